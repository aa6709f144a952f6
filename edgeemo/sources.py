"""Where frames come from: a camera, a video file, a stream URL or a folder of images, behind one
interface; a wrapper that reopens a source that was lost; and the hand-over from a capture thread to
the pipeline that keeps at most a few frames waiting, the newest.

Every source has ``open()``, ``read(out=None)`` and ``close()``. ``read`` returns ``(frame, captured_at)``,
a BGR uint8 [H, W, 3] array and the ``time.monotonic()`` at which it was read, or ``None`` when the
source has ended (a file at its end). A source that fails while it was working (camera unplugged, stream
dropped, file deleted or changed while being read) raises ``SourceLost``. ``out`` is a frame from an
earlier read, which sources decoding with OpenCV fill in place instead of allocating a new frame.

Typical live use, in the thread that processes frames::

    events = queue.SimpleQueue()   # on_event runs on the capture thread: hand events over
    source = ReopeningSource(make_source("0"), on_event=lambda event, detail: events.put((event, detail)))
    with CaptureThread(source) as capture:
        while (item := capture.queue.take()) is not None:
            frame, captured_at, read_s = item
            ...
"""

from __future__ import annotations

import abc
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

Frame = tuple[np.ndarray, float]
EventCallback = Callable[[str, str], None]


class SourceLost(EdgeemoError):
    """A source that was working stopped giving frames; ``ReopeningSource`` opens it again."""


class CorruptFrame(EdgeemoError):
    """One frame could not be decoded (a damaged image, a garbled packet); the source goes on with the
    next. ``CaptureThread`` and serve skip it and count it."""


# How long FFmpeg may wait for a network stream to open and for each read, so that an address that is
# down, or a server that accepts and then says nothing, costs seconds and not FFmpeg's default of ~30 s
# (longer than systemd's and Kubernetes' stop timeouts).
DEFAULT_NETWORK_TIMEOUT_S = 5.0


class FrameSource(abc.ABC):
    """The interface every source has. ``live`` sources (camera, URL) never end; the others do."""

    name: str
    live: bool

    @abc.abstractmethod
    def open(self) -> None:
        """Open the source, or raise EdgeemoError naming it."""

    @abc.abstractmethod
    def read(self, out: np.ndarray | None = None) -> Frame | None:
        """The next ``(frame, captured_at)``; ``None`` at the end; SourceLost when the source broke."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the source; safe to call twice, or when it was never opened."""

    def interrupt(self) -> None:
        """Ask a ``read`` running on another thread to return soon. Thread-safe. The plain sources
        return within a frame anyway, so this does nothing unless a source waits longer."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _OpenCVSource(FrameSource):
    """A source that cv2.VideoCapture decodes."""

    _cannot_open_hint = "check that it exists and OpenCV can read it"

    def __init__(self, target: int | str, name: str) -> None:
        self._target = target
        self.name = name
        self._capture: cv2.VideoCapture | None = None

    def _open_capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(self._target)

    def open(self) -> None:
        self.close()
        capture = self._open_capture()
        if not capture.isOpened():
            capture.release()
            raise EdgeemoError(f"{self.name}: cannot open ({self._cannot_open_hint})")
        self._capture = capture

    def read(self, out: np.ndarray | None = None) -> Frame | None:
        if self._capture is None:
            raise EdgeemoError(f"{self.name}: read before open")
        ok, frame = self._capture.read(out)
        if not ok:
            return self._no_frame()
        return frame, time.monotonic()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _no_frame(self) -> None:
        raise SourceLost(f"{self.name}: no frame (disconnected?)")


class CameraSource(_OpenCVSource):
    """A camera by index (``cv2.VideoCapture(index)``)."""

    live = True
    _cannot_open_hint = "is it connected, and not in use by another program?"

    def __init__(self, index: int, name: str | None = None) -> None:
        super().__init__(index, name or f"camera {index}")


class StreamSource(_OpenCVSource):
    """A network stream: RTSP, HTTP(S) MJPEG, or anything else FFmpeg reads from a URL."""

    live = True
    _cannot_open_hint = "is the address right and the stream up?"

    def __init__(self, url: str, name: str | None = None, timeout_s: float = DEFAULT_NETWORK_TIMEOUT_S) -> None:
        super().__init__(url, name or redact_url(url))
        self.timeout_s = timeout_s

    def _open_capture(self) -> cv2.VideoCapture:
        ms = max(1, round(self.timeout_s * 1000))
        return cv2.VideoCapture(self._target, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])


class VideoFileSource(_OpenCVSource):
    """A video file, read at its own frame rate (``pace=True``, like a camera) or as fast as it decodes.

    At the end of the file it ends (with ``loop``: starts again from its first frame, the pacing going on
    unbroken, for a kiosk or a soak test), unless the file was deleted or changed while being read: then
    it raises SourceLost, and a reopened source starts again from the first frame of what is there.
    """

    live = False
    _cannot_open_hint = "not a video OpenCV can decode"

    def __init__(self, path: str | os.PathLike, *, pace: bool = True, loop: bool = False,
                 name: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), name or str(self.path))
        self.pace = pace
        self.loop = loop
        self.fps = 0.0
        self._identity: tuple[int, int, int] | None = None  # the file read, to tell its end from its loss
        self._started = 0.0
        self._index = 0

    def open(self) -> None:
        if not self.path.is_file():
            raise EdgeemoError(f"{self.name}: no such file")
        self._identity = _file_identity(self.path)
        super().open()
        self.fps = self._capture.get(cv2.CAP_PROP_FPS)
        if self.pace and not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            self.close()
            raise EdgeemoError(f"{self.name}: the file gives no frame rate to pace it by (read it unpaced)")
        self._index = 0

    def read(self, out: np.ndarray | None = None) -> Frame | None:
        if self.pace:
            if self._index == 0:
                self._started = time.monotonic()
            delay = self._started + self._index / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        frame = super().read(out)
        self._index += 1
        return frame

    def _no_frame(self) -> Frame | None:
        # A failed read is the end of the file, unless the file is no longer the one we opened.
        if _file_identity(self.path) != self._identity:
            raise SourceLost(f"{self.name}: the file was deleted or changed while being read")
        if self.loop and self._index > 0:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
            if ok:
                return frame, time.monotonic()
        return None


class ImageFolderSource(FrameSource):
    """The images in a folder (.jpg, .png, ...), in name order, as fast as they load or at ``fps``.

    An image that vanishes before it is read raises SourceLost; reopened, the folder is listed again and
    reading goes on with the names after the last image read.
    """

    live = False

    def __init__(self, path: str | os.PathLike, *, fps: float | None = None, name: str | None = None) -> None:
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise EdgeemoError(f"{name or path}: fps must be a positive number, got {fps!r}")
        self.path = Path(path)
        self.name = name or str(self.path)
        self.fps = fps
        self._files: list[Path] = []
        self._next = 0
        self._last_read: str | None = None
        self._started = 0.0
        self._paced = 0

    def open(self) -> None:
        if not self.path.is_dir():
            raise EdgeemoError(f"{self.name}: no such folder")
        files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files and self._last_read is None:
            raise EdgeemoError(f"{self.name}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._files = [p for p in files if self._last_read is None or p.name > self._last_read]
        self._next = 0
        self._paced = 0

    def read(self, out: np.ndarray | None = None) -> Frame | None:
        # cv2.imread cannot decode into an existing array, so ``out`` is not used.
        if self._next >= len(self._files):
            return None
        path = self._files[self._next]
        if self.fps is not None:
            if self._paced == 0:
                self._started = time.monotonic()
            delay = self._started + self._paced / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._paced += 1
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            if not path.is_file():
                raise SourceLost(f"{path}: vanished before it was read")
            self._next += 1  # skipped: the next read goes on with the image after it
            self._last_read = path.name
            raise CorruptFrame(f"{path}: not a readable image")
        self._next += 1
        self._last_read = path.name
        return frame, time.monotonic()

    def close(self) -> None:
        self._files = []
        self._next = 0


@dataclass(frozen=True)
class Backoff:
    """How ``ReopeningSource`` waits between attempts: ``initial_s``, times ``factor`` after each failure, at
    most ``max_s``; it gives up after ``max_attempts`` failures (``None``: never, for a camera that will be
    plugged back in)."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 10.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not (self.initial_s > 0 and self.factor >= 1 and self.max_s >= self.initial_s):
            raise ValueError(f"Backoff: need initial_s > 0, factor >= 1, max_s >= initial_s; got {self}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"Backoff: max_attempts must be None or at least 1, got {self.max_attempts}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1, 2, ...)."""
        try:
            return min(self.max_s, self.initial_s * self.factor ** (attempt - 1))
        except OverflowError:  # a camera gone for hours reaches attempts where factor ** n overflows
            return self.max_s


class ReopeningSource(FrameSource):
    """Wraps a source so that losing it is not the end: it is closed and opened again, with backoff.

    Reports through ``on_event(event, detail)``, with the status events of ``edgeemo.messages``:
    ``camera_lost`` when the source is lost and after each failed attempt, ``reconnected`` when it is
    back (``reopens`` counts those), ``end_of_stream`` when a file ends. ``on_event`` runs on the thread
    calling ``read``. ``open(retry=True)`` treats a source that cannot be opened at all as one lost at
    once (a camera that enumerates late, a stream server still booting) and waits for it the same way;
    plain ``open()`` fails at once, for sources whose absence is a mistake (a file path). Every failed
    attempt counts in ``open_failures``. After ``backoff.max_attempts`` failed attempts ``read`` (or
    ``open``) raises EdgeemoError; ``interrupt`` ends a wait, and then ``read`` returns None.
    """

    def __init__(
        self, source: FrameSource, *, backoff: Backoff = Backoff(), on_event: EventCallback | None = None
    ) -> None:
        self.source = source
        self.name = source.name
        self.live = source.live
        self.backoff = backoff
        self.reopens = 0
        self.open_failures = 0
        self._on_event = on_event
        self._interrupted = threading.Event()
        self._opened = False

    def open(self, retry: bool = False) -> None:
        self._opened = False
        try:
            self.source.open()
        except EdgeemoError as exc:
            if not retry:
                raise
            self.open_failures += 1
            self._opened = self._reopen(f"{exc}; not available at start", first_delay_s=self.backoff.delay(1))
            return
        self._opened = True

    def read(self, out: np.ndarray | None = None) -> Frame | None:
        if not self._opened:  # interrupted while waiting for the first open
            return None
        while True:
            try:
                frame = self.source.read(out)
            except SourceLost as exc:
                if not self._reopen(str(exc)):
                    return None
                continue
            if frame is None:
                self._emit("end_of_stream", self.name)
            return frame

    def close(self) -> None:
        self.source.close()

    def interrupt(self) -> None:
        self._interrupted.set()
        self.source.interrupt()

    def _reopen(self, reason: str, first_delay_s: float | None = None) -> bool:
        """Reopen the source; False if interrupted first."""
        if first_delay_s is not None:
            reason = f"{reason}; next attempt in {first_delay_s:g} s"
        self._emit("camera_lost", reason)
        self.source.close()
        attempt = 1
        while not self._interrupted.wait(self.backoff.delay(attempt)):
            try:
                self.source.open()
            except EdgeemoError as exc:
                self.open_failures += 1
                if self.backoff.max_attempts is not None and attempt >= self.backoff.max_attempts:
                    raise EdgeemoError(f"{self.name}: lost, and not back after {attempt} attempts ({exc})") from None
                attempt += 1
                next_in = self.backoff.delay(attempt)
                self._emit("camera_lost", f"reopening failed ({exc}); next attempt in {next_in:g} s")
                continue
            self.reopens += 1
            self._emit("reconnected", f"{self.name}: back after {attempt} attempt{'s' if attempt > 1 else ''}")
            return True
        return False

    def _emit(self, event: str, detail: str) -> None:
        if self._on_event is not None:
            self._on_event(event, detail)


class FrameQueue:
    """A bounded mailbox between a capture thread and the pipeline: at most ``depth`` frames wait, oldest first.

    ``put`` on a full queue drops the oldest waiting frame and counts it in ``dropped``, so processing slower
    than the source skips frames instead of falling further behind (as MediaPipe's flow limiter does): latency
    stays at most ``depth`` frames behind. ``depth`` 1 hands over only the newest frame; a deeper queue lets a
    pipeline that keeps up on average ride out a stall (another stream's frame, the scheduler) without a drop,
    at the cost of that much latency while it catches up (docs/serving.md). ``take`` waits for the oldest
    frame not taken yet. Frames are recycled: ``spare`` hands the producer a frame buffer to decode into, so
    after the first frames nothing is allocated, and at most ``depth`` + 4 frame buffers exist (the one being
    written, those waiting, the one the pipeline holds, two spares). The frame ``take`` returns stays valid
    until the next ``take``; copy it to keep it longer.

    Thread-safe for one producer and one consumer.
    """

    _MAX_SPARES = 2

    def __init__(self, depth: int = 1) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"FrameQueue depth: expected a positive integer, got {depth!r}")
        self.depth = depth
        self._cond = threading.Condition()
        self._waiting: deque[tuple[np.ndarray, float, float]] = deque()
        self._held: np.ndarray | None = None
        self._spares: list[np.ndarray] = []
        self._closed = False
        self._error: BaseException | None = None
        self.put_count = 0
        self.taken = 0
        self.dropped = 0
        self.corrupt = 0  # frames the producer could not decode and skipped (CorruptFrame)

    @property
    def ended(self) -> bool:
        """True once the producer has closed the queue and the last frame was taken."""
        with self._cond:
            return self._closed and not self._waiting

    def spare(self) -> np.ndarray | None:
        """A frame buffer the producer may overwrite, or None (then the source allocates one)."""
        with self._cond:
            return self._spares.pop() if self._spares else None

    def put(self, frame: np.ndarray, captured_at: float, read_s: float = 0.0) -> None:
        with self._cond:
            if len(self._waiting) == self.depth:
                self.dropped += 1
                self._recycle(self._waiting.popleft()[0])
            self._waiting.append((frame, captured_at, read_s))
            self.put_count += 1
            self._cond.notify()

    def take(self, timeout_s: float | None = None) -> tuple[np.ndarray, float, float] | None:
        """The oldest waiting ``(frame, captured_at, read_s)``: ``read_s`` is how long the source's read took.

        None when ``timeout_s`` passes first, or when the producer ended (then ``ended`` is True); an error
        that ended the producer is raised here."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._waiting or self._closed, timeout_s):
                return None
            if not self._waiting:
                if self._error is not None:
                    raise self._error
                return None
            item = self._waiting.popleft()
            if self._held is not None:
                self._recycle(self._held)
            self._held = item[0]
            self.taken += 1
            return item

    def close(self, error: BaseException | None = None) -> None:
        """No more frames (the producer ended, with ``error`` if it failed); wakes a waiting ``take``."""
        with self._cond:
            self._closed = True
            self._error = self._error or error  # a later close (stop) must not hide the failure
            self._cond.notify_all()

    def _recycle(self, frame: np.ndarray) -> None:
        if len(self._spares) < self._MAX_SPARES:
            self._spares.append(frame)


class CaptureThread:
    """Reads a source on its own thread into a ``FrameQueue``, so a slow pipeline never makes the
    source (a camera's driver queue) fall behind: the pipeline gets the newest frames, at most the queue's
    depth of them.

    ``start`` opens the source on the calling thread, so opening errors surface there, unless
    ``open_in_thread``: then the thread opens it (``open()`` is called, so a ``ReopeningSource`` made with
    ``retry_open`` waits for a source that is not there yet without holding up the caller). The thread
    closes the source when it ends. The queue is closed when the source ends, fails (``take`` re-raises
    the error) or ``stop`` is called. A ``CorruptFrame`` is skipped and counted in ``queue.corrupt``.
    """

    def __init__(self, source: FrameSource, queue: FrameQueue | None = None, *, open_in_thread: bool = False,
                 retry_open: bool = False) -> None:
        self.source = source
        self.queue = queue if queue is not None else FrameQueue()
        self._open_in_thread = open_in_thread
        self._retry_open = retry_open
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"edgeemo-capture {source.name}", daemon=True)

    def start(self) -> CaptureThread:
        if not self._open_in_thread:
            self.source.open()
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop reading, wait for the thread to end (at most ``timeout_s``), and close the queue. False if the
        thread is still inside the source (a driver or FFmpeg call that does not return): it is a daemon
        thread, so it does not keep the process alive, and it closes the source when the call returns."""
        self._stopping.set()
        self.source.interrupt()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.queue.close()
        return not self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the source to end (or fail); True if it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def __enter__(self) -> CaptureThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        error = None
        try:
            if self._open_in_thread and not self._stopping.is_set():
                if self._retry_open and isinstance(self.source, ReopeningSource):
                    self.source.open(retry=True)
                else:
                    self.source.open()
            while not self._stopping.is_set():
                out = self.queue.spare()
                started = time.monotonic()
                try:
                    item = self.source.read(out)
                except CorruptFrame:
                    self.queue.corrupt += 1  # only this thread writes it; the consumer reads a plain int
                    continue
                if item is None:
                    break
                frame, captured_at = item
                self.queue.put(frame, captured_at, captured_at - started)
        except Exception as exc:  # handed to the consumer, which re-raises it from take()
            error = exc
        finally:
            self.source.close()
            self.queue.close(error)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for logs and status messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def make_source(spec: str, *, pace: bool = True, fps: float | None = None, flag: str = "--camera",
                network_timeout_s: float = DEFAULT_NETWORK_TIMEOUT_S, loop: bool = False) -> FrameSource:
    """The source ``spec`` names: a camera index (``0``), a URL (``rtsp://...``, opened and read with
    ``network_timeout_s``), a folder of images (at ``fps``, or as fast as they load) or a video file
    (paced at its frame rate unless ``pace`` is False, played again and again with ``loop``). Errors name
    ``flag`` and the value."""
    if spec.isdigit():
        return CameraSource(int(spec), name=f"{flag} {spec}")
    if "://" in spec:
        return StreamSource(spec, name=f"{flag} {redact_url(spec)}", timeout_s=network_timeout_s)
    if Path(spec).is_dir():
        return ImageFolderSource(spec, fps=fps, name=f"{flag} {spec}")
    return VideoFileSource(spec, pace=pace, loop=loop, name=f"{flag} {spec}")


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size
