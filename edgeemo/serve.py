"""``edgeemo serve``: frames -> face mesh -> selected landmarks -> ring buffer -> six models -> ZeroMQ.

One or more streams per process, each from its own source. Every live (or paced) source is captured on
its own thread, which hands over the newest ``--frame-queue`` frames (``FrameQueue``), so a pipeline slower
than a camera drops frames and counts them instead of falling behind; files read as fast as possible are read on
the stream's processing thread, every frame processed. Each stream is processed on a thread of its own,
with its own face mesh, ring buffer and models: MediaPipe and ONNX Runtime let go of Python's GIL while
they work, so the streams of one process share every core (docs/streaming.md#concurrent-streams). All
publish on one socket, which binds (subscribers connect to it) or connects to an ``edgeemo relay``.
Several faces in one stream each get an id, a window and predictions of their own (``StreamProcessor``,
``edgeemo.face_track``; docs/multi-face.md).

Left alone for weeks (docs/operations.md): a live source that is not there at start is waited for like
one lost later; what goes wrong in one stream stays in it; SIGTERM ends the process within 2 s whatever
the sources do (``edgeemo.shutdown``); /healthz and /readyz say whether the main loop and every stream's
thread turn and every stream has frames (``edgeemo.health``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeemo.bundle import ModelBundle, load_bundle
from edgeemo.classifier import EmotionClassifier
from edgeemo.device import PROVIDERS, check_device
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.health import DEFAULT_STALE_S, Health
from edgeemo.face_track import FaceTrack
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.keys import ClientKeys, ServerKeys, load_client_keys, load_server_keys
from edgeemo.live_explanations import LiveExplanations, region_colours
from edgeemo.messages import DEFAULT_ENDPOINT, check_stream
from edgeemo.metrics import DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT, Metrics, StreamMetrics, serve_metrics
from edgeemo.normalize import normalize_landmarks
from edgeemo.peers import CONNECTED, HANDSHAKE_FAILED, NO_PEER
from edgeemo.publisher import PredictionPublisher
from edgeemo.shutdown import Shutdown, force_exit
from edgeemo.sources import (
    DEFAULT_NETWORK_TIMEOUT_S,
    CaptureThread,
    CorruptFrame,
    FrameQueue,
    ReopeningSource,
    make_source,
)
from edgeemo.streaming import StreamingClassifier, make_classifier
from edgeemo.tracking import FaceTracker, face_box

DEMO_CLIP = Path(__file__).parent / "resources" / "demo" / "smile.mp4"
log = logging.getLogger("edgeemo.serve")
# --show's overlay (BGR): landmark dots, a box per face, score bars SCORE_BAR_X into the face's score panel,
# SCORE_BAR_PX long at score 1; the panel (width, height) sits beside the face's box
LANDMARK_COLOUR, BOX_COLOUR, SCORE_COLOUR = (0, 255, 0), (255, 128, 0), (0, 200, 255)
SCORE_BAR_X, SCORE_BAR_PX = 64, 60
SCORE_PANEL = (SCORE_BAR_X + SCORE_BAR_PX + 1, 14 + 16 * 6)
# Frames of a captured stream that may wait for its thread; older ones are dropped (edgeemo.sources.FrameQueue).
# Three (100 ms at 30 fps) ride out the stalls of a busy box (another stream's frame, the scheduler) that drop a
# frame when only the newest may wait: one process on 2 cores holds 8 streams with no drop, against 6
# (bench/results/capacity.md, capacity_queue1.md; docs/streaming.md#concurrent-streams).
FRAME_QUEUE = 3
REST_PATH = "/rest"  # POST: "this is rest now" (docs/calibration.md), beside /metrics, /healthz, /readyz


@dataclass(frozen=True)
class ServeOptions:
    cameras: tuple[str, ...] = ("0",)
    model: Path | None = None
    streams: tuple[str, ...] = ("cam0",)  # one per camera
    bind: str = DEFAULT_ENDPOINT
    connect: str | None = None  # a relay's publishers address: connect there instead of binding ``bind``
    curve_keys: Path | None = None  # CURVE keys folder (edgeemo.keys); None: no encryption, loopback only
    metrics_host: str = DEFAULT_METRICS_HOST
    metrics_port: int = DEFAULT_METRICS_PORT  # 0: no metrics endpoint
    every: int = 1  # classify every n-th frame once the window is full
    process_every: int = 1  # run the face mesh and everything after it on every n-th frame of each stream
    frame_queue: int = FRAME_QUEUE  # frames of a captured stream that may wait for its thread (FrameQueue)
    threads: int = 1  # ONNX Runtime intra-op threads
    stream_cpus: frozenset[int] | None = None  # the CPUs the stream threads run on (pin_stream_thread); None: any
    device: str = "cpu"
    pace: bool = True  # files play at their own frame rate; False: as fast as possible, no frame dropped
    face_gap_s: float = 0.5  # a face gone longer than this ends its track (and its window)
    max_faces: int = 4  # faces followed per stream, each its own track, window and predictions
    sndhwm: int = 100
    show: bool = False
    network_timeout_s: float = DEFAULT_NETWORK_TIMEOUT_S  # an rtsp:// or http:// source's open and read timeout
    stale_s: float = DEFAULT_STALE_S  # /readyz fails while a stream has had no frame for this long
    loop: bool = False  # video files start again at their end
    explain: bool = False  # add an ``explanation`` to predictions (edgeemo.live_explanations)
    explain_every: int = 1  # ... to every n-th prediction, and whenever the label changes
    explain_emotion: str | None = None  # ... of this emotion (None: the top score's)
    explain_landmarks: bool = False  # ... with the approximate landmark-level values
    calibration: str = "auto"  # a calibrated bundle: "auto" finds each face's rest, "off" uses its uncalibrated models


class StreamProcessor:
    """One stream's per-frame work after capture: find the faces, tell them apart (``edgeemo.tracking``) and
    hand each to its own ``FaceTrack`` (window, predictions). Not thread-safe: one per stream, on one thread."""

    def __init__(self, stream: str, bundle: ModelBundle, classifier: EmotionClassifier | StreamingClassifier, landmarker,
                 publisher: PredictionPublisher, metrics: StreamMetrics, every: int = 1, face_gap_s: float = 0.5,
                 explain: Callable[[StreamingClassifier], LiveExplanations] | None = None, calibration: str = "auto",
                 process_every: int = 1):
        self.stream, self.bundle, self.classifier = stream, bundle, classifier
        self.explain = explain  # --explain: makes a face's explanations for a classifier (edgeemo.live_explanations)
        self.calibration = calibration  # "auto": a calibrated bundle finds each face's rest; "off": it does not
        self.landmarker, self.publisher, self.metrics = landmarker, publisher, metrics
        self.every, self.face_gap_s = every, face_gap_s
        # Every n-th frame goes through the face mesh, the others are passed over (``--process-every``): the
        # windows are timed (edgeemo.streaming), so they still span their seconds while the step n / fps is
        # no longer than the bundle's window step (2 at 30 fps for a window sampled 15 times a second).
        self.process_every = process_every
        self._frames_seen = 0  # frames of this stream so far: video time for a file read with --fast
        self._rgb: np.ndarray | None = None
        self._face_present: bool | None = None  # None until the first frame; False: no face seen yet
        # Seconds of video per frame when frames come faster than they were filmed (a file read with --fast):
        # then a face's absence is counted in video time, not in the wall time it took to decode.
        self.frame_interval_s: float | None = None
        self.tracker = FaceTracker()
        self.tracks: dict[int, FaceTrack] = {}  # by face id, while the face is in view or briefly missed
        self.last_faces: list[int] = []  # the ids of the faces found in the last frame
        self._rest_requests: queue.SimpleQueue = queue.SimpleQueue()  # faces asked to take their rest now

    def process(self, frame: np.ndarray, captured_at: float, read_s: float) -> list[dict]:
        """Handle one BGR frame; return the predictions published, one per face whose window is ready."""
        started = time.monotonic()
        self.metrics.frame()
        self._frames_seen += 1
        if (self._frames_seen - 1) % self.process_every:
            self.metrics.frame_skipped()
            return []
        if self._rgb is None or self._rgb.shape != frame.shape:
            self._rgb = np.empty_like(frame)
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=self._rgb)  # OpenCV decodes BGR, MediaPipe wants RGB
        at = self.frame_time(captured_at)
        self._take_rest_requests()
        faces = self.landmarker.detect_all(self._rgb)
        normalized = [normalize_landmarks(points) for points in faces]
        boxes = [face_box(points) for points in faces]
        ids = self.tracker.update(boxes, normalized)
        landmarks_s = time.monotonic() - started
        self.last_faces = [face for face in ids if face >= 0]
        # A face missed on a processed frame was missed for process_every frames of video.
        interval = None if self.frame_interval_s is None else self.frame_interval_s * self.process_every
        for face in [face for face in self.tracks if face not in ids]:
            if self.tracks[face].missed(captured_at, interval, at):
                self._end(face)
        if not faces:
            if self._face_present is None:
                self._face_present = False
                self.publisher.publish_status(self.stream, "no_face")
            return []
        self.metrics.face_found()
        self._face_present = True
        payloads = []
        for face, points, box, face_normalized in zip(ids, faces, boxes, normalized):
            if face < 0:  # a bent mesh over a known face (edgeemo.tracking): that face is missed this frame
                continue
            track = self.tracks.get(face) or self._start(face)
            payload = track.found(points, box, face_normalized, frame.shape, captured_at, read_s, started,
                                  landmarks_s, at)
            if payload is not None:
                payloads.append(payload)
        return payloads

    def request_rest(self, face: int | None = None) -> None:
        """"This is rest now" for one face, or every face in view (None). Thread-safe: the stream's next frame
        carries it out (the request comes from the HTTP server's thread, or --show's key r)."""
        self._rest_requests.put(face)

    def _take_rest_requests(self) -> None:
        while not self._rest_requests.empty():
            face = self._rest_requests.get()
            for tracked, track in self.tracks.items():
                if face is None or tracked == face:
                    track.request_rest()

    def frame_time(self, captured_at: float) -> float:
        """The frame's time in seconds: video time for a file read faster than filmed, else its capture time."""
        return self._frames_seen * self.frame_interval_s if self.frame_interval_s is not None else captured_at

    def _start(self, face: int) -> FaceTrack:
        track = FaceTrack(self.stream, face, self.bundle, self.classifier, self.publisher, self.metrics,
                          self.every, self.face_gap_s, self.explain, self.calibration)
        self.tracks[face] = track
        self.metrics.track_started(len(self.tracks))
        self.publisher.publish_status(self.stream, "face_found", f"face {face}; {_faces(len(self.tracks))} in view",
                                      face=face)
        return track

    def _end(self, face: int) -> None:
        del self.tracks[face]
        self.tracker.drop(face)
        self.metrics.track_ended(len(self.tracks))
        self.publisher.publish_status(
            self.stream, "no_face", f"face {face} gone longer than {self.face_gap_s:g} s; "
            f"{_faces(len(self.tracks))} in view", face=face)


def _faces(count: int) -> str:
    return f"{count} face" + ("" if count == 1 else "s")


def stream_ids(cameras: tuple[str, ...], streams: tuple[str, ...] | None) -> tuple[str, ...]:
    """One stream id per camera: the ones given, else cam0, cam1, ..."""
    if streams is None:
        return tuple(f"cam{i}" for i in range(len(cameras)))
    if len(streams) != len(cameras):
        raise EdgeemoError(
            f"--stream: {len(streams)} given for {len(cameras)} --camera sources "
            "(give one per --camera, or none for cam0, cam1, ...)"
        )
    for stream in streams:
        check_stream(stream, where="--stream")
    if len(set(streams)) != len(streams):
        raise EdgeemoError(f"--stream: {sorted(s for s in streams if streams.count(s) > 1)[0]!r} given twice")
    return tuple(streams)


class _Feed:
    """One stream's source as its processing thread sees it: ``next()`` gives the next frame, or None;
    ``ended`` once the source has ended. A threaded feed is captured on its own thread (live and
    paced sources); an unthreaded one is read on the stream's processing thread, every frame, as fast as it
    decodes.

    A live source (camera, URL) is opened on its capture thread and, if it is not there yet, waited for
    with backoff like one lost later: a camera that enumerates after boot is a fault of the world, not a
    usage error. Files are opened at once, so a wrong path is a one-line error (exit 2)."""

    def __init__(self, stream: str, source: ReopeningSource, threaded: bool, metrics: StreamMetrics,
                 frame_queue: int = FRAME_QUEUE) -> None:
        self.stream, self.source, self.metrics = stream, source, metrics
        self.capture = (CaptureThread(source, FrameQueue(frame_queue), open_in_thread=source.live,
                                      retry_open=source.live) if threaded else None)
        self.ended = False
        self.failure: str | None = None  # why the stream ended, when it failed rather than ended
        self._dropped = self._corrupt = self._open_failures = 0
        self._drops_reported, self._drops_reported_at = 0, None  # the journal's view of the dropped frames

    def open(self) -> None:
        if self.capture is not None:
            self.capture.start()
        else:
            self.source.open()

    def video_frame_interval(self) -> float | None:
        """Seconds of video per frame of a file read faster than it was filmed (unthreaded), else None."""
        fps = getattr(self.source.source, "fps", None)  # inside the ReopeningSource: the file's rate
        if self.capture is None and fps and 0 < fps <= 1000:
            return 1.0 / fps
        return None

    def next(self, timeout_s: float = 0.0) -> tuple[np.ndarray, float, float] | None:
        """The next frame: a captured one that arrives within ``timeout_s``, or an unthreaded source's next
        frame; None if there is none (yet); raises what ended the source if it failed."""
        if self.capture is None:
            started = time.monotonic()
            try:
                item = self.source.read()
            except CorruptFrame:
                self.metrics.frames_corrupt()
                return None
            if item is None:
                self.ended = True
                return None
            return item[0], item[1], item[1] - started
        frames = self.capture.queue
        try:
            item = frames.take(timeout_s=timeout_s)
        finally:
            if frames.ended:
                self.ended = True
        return item

    def count(self) -> None:
        """Hand the capture side's counters (plain ints it alone writes) to the metrics. On the main loop's
        thread, before it publishes the capture threads' events, so a status and its counter agree."""
        if self.capture is not None:
            frames = self.capture.queue
            dropped, corrupt = frames.dropped, frames.corrupt
            if dropped > self._dropped:
                self.metrics.frames_dropped(dropped - self._dropped)
                self._dropped = dropped
                self._report_drops()
            if corrupt > self._corrupt:
                self.metrics.frames_corrupt(corrupt - self._corrupt)
                self._corrupt = corrupt
        failures = self.source.open_failures
        if failures > self._open_failures:
            self.metrics.source_open_failed(failures - self._open_failures)
            self._open_failures = failures

    def _report_drops(self) -> None:
        """A log line at the first dropped frame, then at most every ERROR_LOG_EVERY_S with the count since: the
        journal says what the metric counts, and what to do about it, without a line per frame."""
        now = time.monotonic()
        if self._drops_reported_at is not None and now - self._drops_reported_at < ERROR_LOG_EVERY_S:
            return
        since = "" if self._drops_reported_at is None else " since the last report"
        count = self._dropped - self._drops_reported
        log.warning("%s: %d frame%s dropped%s (%d in all): frames arrive faster than this stream is processed; "
                    "--process-every 2, --stream-cpus 0 on a 2-core box, or one process per core "
                    "(docs/streaming.md#concurrent-streams) lighten it",
                    self.stream, count, "" if count == 1 else "s", since, self._dropped)
        self._drops_reported, self._drops_reported_at = self._dropped, now

    def interrupt(self) -> None:
        self.source.interrupt()

    def close(self, timeout_s: float | None = None) -> bool:
        """Stop the source; False if its capture thread is still stuck in it after ``timeout_s``."""
        if self.capture is not None:
            return self.capture.stop(timeout_s)
        self.source.close()
        return True


# Shutdown: what the feeds' capture threads get, all together, to let go of their sources; with the
# publisher's linger (0.5 s) it stays inside the watchdog's 1.5 s (edgeemo.shutdown).
FEEDS_CLOSE_S = 0.5
# One stream's repeated errors: logged once, then once a minute with a count, so a bad stream cannot
# flood the journal.
ERROR_LOG_EVERY_S = 60.0
# A stream's thread waits this long for a frame before it looks at ``halt`` and beats again.
FRAME_WAIT_S = 0.2
# Shutdown: what the stream threads get, all together, to finish the frame in hand (a few ms each).
STREAMS_JOIN_S = 0.3
SHOW_EVERY_S = 0.015  # --show: how often the windows are redrawn (and keys read), about a 60 Hz screen's rate


def serve(options: ServeOptions, shutdown: Shutdown | None = None) -> int:
    """Run until every source has ended, or SIGINT/SIGTERM; returns the exit code: 0, or 1 when a stream
    failed for good (an error that reopening cannot fix), so that a supervisor restarts the process.

    ``shutdown``: the caller's, installed already (the command installs it before the slow imports);
    None: serve installs its own, and restores the signals when it returns."""
    from edgeemo.landmarker import graph_threads
    from edgeemo.multi_face import MultiFaceLandmarker

    if options.max_faces < 1:
        raise EdgeemoError(f"--max-faces {options.max_faces}: expected at least 1")
    if options.device not in PROVIDERS:
        raise EdgeemoError(f"--device {options.device}: expected one of {', '.join(PROVIDERS)}")
    if options.show:
        check_display()
    streams = stream_ids(options.cameras, options.streams)
    wake = threading.Event()  # set by capture threads (an event is waiting) and by streams that end
    events: queue.SimpleQueue = queue.SimpleQueue()
    feeds: list[_Feed] = []

    def interrupt() -> None:  # on the signal watcher's thread: only flags and interrupts
        for feed in list(feeds):
            feed.interrupt()
        wake.set()

    # First of all: a signal during the seconds spent loading must end the process as promptly.
    own = shutdown is None
    if own:
        shutdown = Shutdown().install()
    shutdown.on_stop(interrupt)
    stop = shutdown.stop
    try:
        # Bind (or connect) first: subscribers can connect while the models and MediaPipe load.
        with PredictionPublisher(options.connect or options.bind, connect=options.connect is not None,
                                 curve=_curve_keys(options), sndhwm=options.sndhwm) as publisher:
            bundle = load_bundle(options.model or _default_bundle())
            if options.process_every > 1 and bundle.streaming is None:
                raise EdgeemoError(f"--process-every {options.process_every}: {bundle.path} has no streaming pair, "
                                   "so its window is counted in frames and would stretch; add one with edgeemo fuse")
            providers = check_device(options.device, bundle.models[0].path)
            metrics = Metrics(bundle=bundle.bundle_id)
            health = Health(streams, stale_s=options.stale_s)
            feeds.extend(_feed(camera, stream, options, events, wake, metrics.stream(stream))
                         for camera, stream in zip(options.cameras, streams))
            for feed in feeds:
                feed.metrics.watch_frame_age(functools.partial(health.frame_age, feed.stream))
            processors: dict[str, StreamProcessor] = {}
            server = (serve_metrics(metrics.registry, options.metrics_host, options.metrics_port, health=health,
                                    actions={REST_PATH: functools.partial(_rest_request, processors)})
                      if options.metrics_port else None)
            if server is not None:
                log.info("metrics on %s, health on %s/healthz and %s/readyz", server.url, server.base_url,
                         server.base_url)
            try:
                with contextlib.ExitStack() as stack:
                    for feed in feeds:
                        if stop.is_set():
                            break
                        # Each stream its own face tracker and models: neither holds state another may see. Its
                        # face meshes share the process's CPUs with the other streams' (graph_threads).
                        landmarker = stack.enter_context(MultiFaceLandmarker(options.max_faces,
                                                                             threads=graph_threads(len(feeds))))
                        classifier = make_classifier(bundle, providers, options.threads)
                        explain = explanation_factory(options, classifier)
                        processors[feed.stream] = StreamProcessor(feed.stream, bundle, classifier, landmarker,
                                                                  publisher, feed.metrics, options.every,
                                                                  options.face_gap_s, explain, options.calibration,
                                                                  options.process_every)
                    if not stop.is_set():
                        for feed in feeds:
                            publisher.publish_status(feed.stream, "started",
                                                     f"{feed.source.name}; bundle {bundle.bundle_id}")
                            log.info("%s: started: %s; bundle %s, %s, %s", feed.stream, feed.source.name,
                                     bundle.bundle_id, processors[feed.stream].classifier, providers[0])
                        stack.callback(_close_feeds, feeds)
                        for feed in feeds:
                            feed.open()
                            processors[feed.stream].frame_interval_s = feed.video_frame_interval()
                        _process(feeds, processors, publisher, events, wake, stop, options.show, health,
                                 metrics, options.stream_cpus)
                health.stopping()
                why = "signal" if stop.is_set() else "source ended"
                for feed in feeds:
                    publisher.publish_status(feed.stream, "shutting_down", why)
                log.info("shutting down (%s)", f"signal {shutdown.signal_name}" if stop.is_set() else "sources ended")
            finally:
                if server is not None:
                    server.close()
                if options.show:
                    cv2.destroyAllWindows()
    finally:
        if own:
            shutdown.restore()
    failed = [feed for feed in feeds if feed.failure is not None]
    return 1 if failed and not stop.is_set() else 0


def _rest_request(processors: dict[str, StreamProcessor], query: dict[str, str]) -> tuple[int, str]:
    """POST /rest[?stream=S][&face=N]: "this is rest now" for those faces (every face of every stream by
    default); on the HTTP server's thread, so it only queues the request (StreamProcessor.request_rest)."""
    stream, face = query.get("stream"), query.get("face")
    if stream is not None and stream not in processors:
        return 404, f"stream {stream!r}: no such stream (streams: {', '.join(processors) or 'none started yet'})"
    if face is not None and not face.isdigit():
        return 400, f"face {face!r}: expected a face id (a whole number, as in the predictions' face key)"
    chosen = [processors[stream]] if stream is not None else list(processors.values())
    for processor in chosen:
        processor.request_rest(None if face is None else int(face))
    return 202, f"rest asked of {'face ' + face if face is not None else 'every face'} in " \
                f"{stream or 'every stream'}; a rest_established status follows for each face in view"


def _close_feeds(feeds: list[_Feed]) -> None:
    """Interrupt every source, then give their threads ``FEEDS_CLOSE_S`` in all to let go."""
    for feed in feeds:
        feed.interrupt()
    deadline = time.monotonic() + FEEDS_CLOSE_S
    for feed in feeds:
        if not feed.close(max(0.0, deadline - time.monotonic())):
            log.warning("%s: %s did not let go in time; leaving it behind", feed.stream, feed.source.name)


def pin_stream_thread(cpus: frozenset[int]) -> None:
    """Run the calling thread (a stream's: edgeemo's Python and its ONNX Runtime calls) on ``cpus`` only
    (--stream-cpus), with the threads it starts (OpenCV's worker pool, made at the first colour conversion).
    MediaPipe's graph threads, started with the landmarkers before this, keep every CPU.

    Why: a process's stream threads take turns on one interpreter lock. Spread over both cores of a 2-core box,
    the lock is handed from core to core, and with 10 streams at 30 fps frames wait long enough to be dropped
    (one process: 2 to 133 in each of six runs of 40 s). With the stream threads on one core and MediaPipe's
    native threads free to use both: 0, 0, 0, 3 and 0 (docs/streaming.md#concurrent-streams)."""
    os.sched_setaffinity(threading.get_native_id(), cpus)  # Linux: this thread only, not the process


class _ErrorLog:
    """Logs a stream's repeated errors once, then at most every ERROR_LOG_EVERY_S with a count."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def __call__(self, stream: str, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        self._since[stream] = self._since.get(stream, 0) + 1
        last = self._last.get(stream)
        if last is None or now - last >= ERROR_LOG_EVERY_S:
            count = self._since.pop(stream)
            more = f" ({count} errors since the last report)" if last is not None else ""
            log.warning("%s: %s: %s: %s%s; the stream goes on", stream, what, type(exc).__name__, exc, more)
            self._last[stream] = now


def _process(feeds: list[_Feed], processors: dict[str, StreamProcessor], publisher: PredictionPublisher,
             events: queue.SimpleQueue, wake: threading.Event, stop: threading.Event, show: bool,
             health: Health, metrics: Metrics, stream_cpus: frozenset[int] | None = None) -> None:
    """Process each stream on a thread of its own (``_run_stream``) until every source has ended, ``stop`` is
    set or the user pressed q in a window. This thread beats for /healthz, publishes the capture threads' events
    and the relay connection's changes, and with --show shows each stream's last overlay (OpenCV's windows
    belong to one thread). What goes wrong in one stream stays in its thread: the others go on."""
    halt = threading.Event()  # ``stop``, or q pressed: the stream threads finish their frame and return
    # Everything loaded so far (MediaPipe, ONNX Runtime, TensorFlow where installed: 400,000 objects) lives as
    # long as the process: out of the collector's sight, a full collection takes microseconds, not the 190 ms
    # that held every stream (and the GIL) still long enough to drop frames.
    gc.freeze()
    views: dict[str, np.ndarray] | None = {} if show else None  # --show: each stream's newest overlay
    workers = [threading.Thread(target=_run_stream, name=f"edgeemo-{feed.stream}", daemon=True,
                                args=(feed, processors[feed.stream], publisher, health, halt, wake, views, stream_cpus))
               for feed in feeds]
    for worker in workers:
        worker.start()
    by_stream = {feed.stream: feed.metrics for feed in feeds}
    try:
        while not (stop.is_set() or halt.is_set()) and any(worker.is_alive() for worker in workers):
            health.beat()
            wake.clear()  # before looking: an event that comes after the look sets it again
            for feed in feeds:
                feed.count()
            _forward_events(events, publisher, by_stream)
            _forward_peer_events(publisher, feeds, metrics)
            if views is not None and _show(views, processors):
                halt.set()
            # Wake for an event or a stream that ended; at least every 0.2 s, to notice ``stop`` and beat.
            wake.wait(SHOW_EVERY_S if views is not None else 0.2)
    finally:
        halt.set()
        deadline = time.monotonic() + STREAMS_JOIN_S
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for feed in feeds:
            feed.count()
        stuck = [worker.name for worker in workers if worker.is_alive()]
        if stuck:  # closing a face mesh under a thread still inside it could crash the process: leave now
            force_exit(0 if stop.is_set() else 1, f"{', '.join(stuck)} still in a frame at shutdown; not waiting")
    _forward_events(events, publisher, by_stream)
    _forward_peer_events(publisher, feeds, metrics)


def _run_stream(feed: _Feed, processor: StreamProcessor, publisher: PredictionPublisher, health: Health,
                halt: threading.Event, wake: threading.Event, views: dict[str, np.ndarray] | None,
                cpus: frozenset[int] | None = None) -> None:
    """One stream's frames, one at a time, until its source ends or fails, or ``halt`` is set. A source that
    fails for good ends this stream only; an error processing a frame loses that frame only (counted, logged)."""
    if cpus:
        pin_stream_thread(cpus)
    errors = _ErrorLog()
    try:
        while not halt.is_set():
            health.beat(feed.stream)
            try:
                item = feed.next(timeout_s=FRAME_WAIT_S)
            except Exception as exc:  # the source failed in a way reopening cannot fix
                _stream_failed(feed, exc, publisher, health)
                return
            if item is None:
                if feed.ended:
                    health.ended(feed.stream)
                    return
                continue
            health.frame(feed.stream)
            frame = item[0]
            if not _is_image(frame):
                feed.metrics.frames_corrupt()
                continue
            try:
                processor.process(*item)
            except Exception as exc:  # one frame lost, not the stream, nor the others
                feed.metrics.stream_error()
                errors(feed.stream, "processing a frame", exc)
                continue
            if views is not None:
                views[feed.stream] = draw_overlay(frame, processor)
    finally:
        wake.set()


def _is_image(frame: object) -> bool:
    """A decoded BGR frame, not what a damaged stream can hand over (nothing, a wrong shape or type)."""
    return (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
            and frame.shape[0] > 0 and frame.shape[1] > 0)


def _stream_failed(feed: _Feed, exc: BaseException, publisher: PredictionPublisher, health: Health) -> None:
    feed.ended = True
    feed.failure = f"{type(exc).__name__}: {exc}"
    feed.metrics.stream_error()
    health.ended(feed.stream, feed.failure)
    log.error("%s: stopped: %s; the other streams go on", feed.stream, feed.failure)
    publisher.publish_status(feed.stream, "camera_lost", f"stopped: {feed.failure}")


def _feed(camera: str, stream: str, options: ServeOptions, events: queue.SimpleQueue, wake: threading.Event,
          metrics: StreamMetrics) -> _Feed:
    spec = str(DEMO_CLIP) if camera == "demo" else camera

    def on_event(event: str, detail: str) -> None:  # runs on the thread reading the source
        events.put((stream, event, detail))
        wake.set()

    source = ReopeningSource(make_source(spec, pace=options.pace, network_timeout_s=options.network_timeout_s,
                                         loop=options.loop), on_event=on_event)
    return _Feed(stream, source, source.live or options.pace, metrics, options.frame_queue)


def explanation_factory(options: ServeOptions, classifier) -> Callable[[StreamingClassifier], LiveExplanations] | None:
    """With --explain: what makes a face's explanations for one of the stream's classifiers (a calibrated
    bundle has two), checked now (a bundle without a streaming pair is a usage error); the faces of a stream
    share each classifier's emotion graphs, each face keeps its own window."""
    if not options.explain:
        return None
    parts: dict[int, dict] = {}  # the graphs of each classifier, by id()

    def make(of: StreamingClassifier) -> LiveExplanations:
        return LiveExplanations(of, options.explain_every, threads=options.threads, emotion=options.explain_emotion,
                                landmarks=options.explain_landmarks, parts=parts.setdefault(id(of), {}))

    for checked in (classifier, classifier.uncalibrated):
        if checked is not None:
            make(checked)  # refuses a bundle with no streaming pair, before any frame
    return make


def _curve_keys(options: ServeOptions) -> ServerKeys | ClientKeys | None:
    """Binding, serve is a CURVE server; connecting to a relay, a client of it."""
    if options.curve_keys is None:
        return None
    if options.connect is not None:
        return load_client_keys(options.curve_keys)
    return load_server_keys(options.curve_keys)


def _default_bundle() -> Path:
    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        raise EdgeemoError(f"--model: no default model bundle at {DEFAULT_BUNDLE}; pass --model BUNDLE")
    return DEFAULT_BUNDLE


def _forward_events(events: queue.SimpleQueue, publisher: PredictionPublisher,
                    metrics: dict[str, StreamMetrics]) -> None:
    """Publish the capture threads' events from this thread (a ZeroMQ socket belongs to one thread), and
    log them."""
    while True:
        try:
            stream, event, detail = events.get_nowait()
        except queue.Empty:
            return
        if event == "reconnected":
            metrics[stream].source_reopened()
        (log.warning if event == "camera_lost" else log.info)("%s: %s: %s", stream, event, detail)
        publisher.publish_status(stream, event, detail)


# The publishing socket's peer states (edgeemo.peers) as status events of every stream.
PEER_EVENTS = {CONNECTED: "relay_connected", NO_PEER: "relay_lost", HANDSHAKE_FAILED: "relay_handshake_failed"}


def _forward_peer_events(publisher: PredictionPublisher, feeds: list[_Feed], metrics: Metrics) -> None:
    """With --connect: report each change of the relay connection once (log, status, metrics). A status
    sent while there is no relay is lost, of course; the log line and the metrics are what tell then."""
    monitor = publisher.peer_monitor
    if monitor is None:
        return
    for state, detail in monitor.poll():
        (log.info if state == CONNECTED else log.warning)("%s: %s", PEER_EVENTS[state], detail)
        for feed in feeds:
            publisher.publish_status(feed.stream, PEER_EVENTS[state], detail)
    metrics.relay_state(monitor.peers, monitor.handshake_failures)


def draw_overlay(frame: np.ndarray, processor: StreamProcessor) -> np.ndarray:
    """A copy of ``frame`` with, for each face found in the last frame, the landmarks the bundle reads (green
    dots), its box, its id and label, and its six scores as bars beside the box (``score_panel``)."""
    view = frame.copy()
    for face in processor.last_faces:
        track = processor.tracks.get(face)
        if track is None or track.last_points is None:
            continue
        explained = track.explanations.last if track.explanations is not None else None
        union = track.path.union  # the landmarks the models judging this face read now
        colours = region_colours(explained, union) if explained else None  # --explain: by region
        for i, (x, y) in enumerate(track.last_points[union].astype(int)):
            colour = LANDMARK_COLOUR if colours is None else tuple(int(c) for c in colours[i])
            cv2.circle(view, (int(x), int(y)), 1 if colours is None else 2, colour, -1)
        x0, y0, x1, y1 = map(int, track.last_box)
        cv2.rectangle(view, (x0, y0), (x1, y1), BOX_COLOUR, 1)
        rest = "" if track.rest is None else " (rest)" if track.rest.calibrated else " (finding rest)"
        cv2.putText(view, f"face {face} {track.last_label or ''}{rest}", (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, BOX_COLOUR, 1)
        if track.last_scores is None:
            continue
        px, py = score_panel(track.last_box, view.shape)
        for i, (emotion, score) in enumerate(zip(EMOTIONS, track.last_scores)):
            y = py + 14 + 16 * i
            cv2.rectangle(view, (px + SCORE_BAR_X, y - 9), (px + SCORE_BAR_X + int(SCORE_BAR_PX * score), y),
                          SCORE_COLOUR, -1)
            cv2.putText(view, emotion, (px, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    return view


def score_panel(box: tuple[float, float, float, float], shape: tuple[int, ...]) -> tuple[int, int]:
    """Top-left pixel of a face's score bars: right of its box where they fit, else left of it, in the image."""
    height, width = shape[:2]
    x0, y0, x1, _ = (int(v) for v in box)
    x = x1 + 4 if x1 + 4 + SCORE_PANEL[0] <= width else x0 - 4 - SCORE_PANEL[0]
    return min(max(x, 0), max(width - SCORE_PANEL[0], 0)), min(max(y0, 0), max(height - SCORE_PANEL[1], 0))


def check_display() -> None:
    """Refuse ``--show`` where no window can open: there OpenCV's Qt aborts the process, with no Python error."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeemoError("--show: no display to open a window on (DISPLAY is not set); "
                           "run without --show, or in a desktop session")


def _show(views: dict[str, np.ndarray], processors: dict[str, StreamProcessor]) -> bool:
    """Show each stream's newest overlay in its window; True when the user pressed q. r: "this is rest now"
    for every face in view (a key press belongs to no one window)."""
    try:
        for stream, view in list(views.items()):
            cv2.imshow(f"edgeemo {stream}", view)
        key = cv2.waitKey(1) & 0xFF
        if key == ord("r"):
            for processor in processors.values():
                processor.request_rest()
        return key == ord("q")
    except cv2.error as exc:
        raise EdgeemoError(f"--show: cannot open a window here ({str(exc).splitlines()[0][:80]})") from None
