"""``edgeemo serve``: frames -> face mesh -> selected landmarks -> ring buffer -> six models -> ZeroMQ.

One or more streams per process, each from its own source. Every live (or paced) source is captured on
its own thread, which hands over only the newest frame (``LatestFrameSlot``), so a pipeline slower than a
camera drops frames and counts them instead of falling behind; files read as fast as possible are read on
the pipeline's thread, every frame processed. One processing loop serves every stream in turn, each with
its own face mesh, ring buffer and models, and publishes them all on one socket, which binds (subscribers
connect to it) or connects to an ``edgeemo relay``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeemo.bundle import ModelBundle, load_bundle
from edgeemo.classifier import EmotionClassifier
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.keys import ClientKeys, ServerKeys, load_client_keys, load_server_keys
from edgeemo.live_explanations import LiveExplanations, region_colours
from edgeemo.messages import DEFAULT_ENDPOINT, check_stream
from edgeemo.metrics import DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT, Metrics, StreamMetrics, serve_metrics
from edgeemo.normalize import normalize_landmarks
from edgeemo.publisher import PredictionPublisher
from edgeemo.ringbuffer import RingBuffer
from edgeemo.sources import CaptureThread, FrameSource, LatestFrameSlot, ReopeningSource, make_source
from edgeemo.streaming import StreamingClassifier, TimedWindow, make_classifier

DEMO_CLIP = Path(__file__).parent / "resources" / "demo" / "smile.mp4"
PROVIDERS = {"cpu": ("CPUExecutionProvider",), "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider")}
# --show's overlay (BGR): landmark dots, score bars from x = SCORE_BAR_X, SCORE_BAR_PX long at score 1
LANDMARK_COLOUR, SCORE_COLOUR = (0, 255, 0), (0, 200, 255)
SCORE_BAR_X, SCORE_BAR_PX = 90, 100


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
    threads: int = 1  # ONNX Runtime intra-op threads
    device: str = "cpu"
    pace: bool = True  # files play at their own frame rate; False: as fast as possible, no frame dropped
    face_gap_s: float = 0.5  # a face gone longer than this empties the window
    sndhwm: int = 100
    show: bool = False
    explain: bool = False  # add an ``explanation`` to predictions (edgeemo.live_explanations)
    explain_every: int = 1  # ... to every n-th prediction, and whenever the label changes
    explain_emotion: str | None = None  # ... of this emotion (None: the top score's)
    explain_landmarks: bool = False  # ... with the approximate landmark-level values


class StreamProcessor:
    """One stream's per-frame work after capture. Not thread-safe: one per stream, on one thread."""

    def __init__(self, stream: str, bundle: ModelBundle, classifier: EmotionClassifier | StreamingClassifier, landmarker,
                 publisher: PredictionPublisher, metrics: StreamMetrics, every: int = 1, face_gap_s: float = 0.5,
                 explanations: LiveExplanations | None = None):
        self.stream, self.bundle, self.classifier = stream, bundle, classifier
        self.explanations = explanations  # --explain: the window's faces and the rate (edgeemo.live_explanations)
        self.landmarker, self.publisher, self.metrics = landmarker, publisher, metrics
        self.every, self.face_gap_s = every, face_gap_s
        self.union = bundle.landmarks_union
        self.buffer = RingBuffer.for_window(bundle.frames, bundle.frame_stride, len(self.union))
        self._window = np.zeros((bundle.frames, 2, len(self.union)), np.float32)
        # The fused pair (a bundle that has one): each frame encoded once, on arrival, and windows picked by
        # capture time, as trained, instead of counted in frames (edgeemo.streaming, docs/streaming.md).
        self.timed = TimedWindow(bundle, classifier.width) if isinstance(classifier, StreamingClassifier) else None
        self._encoding: np.ndarray | None = None
        self._frames_seen = 0
        self._rgb: np.ndarray | None = None
        self._k = {m.emotion: len(m.landmarks) for m in bundle.models}
        self._face_present: bool | None = None  # None until the first frame
        self._last_face_at: float | None = None
        # Seconds of video per frame when frames come faster than they were filmed (a file read with --fast):
        # then a face's absence is counted in video time, not in the wall time it took to decode.
        self.frame_interval_s: float | None = None
        self._missed = 0  # frames without a face since the last face
        self._last_face: np.ndarray | None = None
        self._frames_since_full = 0
        self.last_scores: np.ndarray | None = None
        self.last_label: str | None = None
        self.last_points: np.ndarray | None = None

    def process(self, frame: np.ndarray, captured_at: float, read_s: float) -> dict | None:
        """Handle one BGR frame; return the prediction published, or None."""
        started = time.monotonic()
        self.metrics.frame()
        self._frames_seen += 1
        if self._rgb is None or self._rgb.shape != frame.shape:
            self._rgb = np.empty_like(frame)
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=self._rgb)  # OpenCV decodes BGR, MediaPipe wants RGB
        points = self.landmarker.detect(self._rgb)
        self.last_points = points
        if points is None:
            self._no_face(captured_at)
            return None
        self.metrics.face_found()
        if not self._face_present:
            self._face_present = True
            self.publisher.publish_status(self.stream, "face_found")
        self._last_face_at, self._missed = captured_at, 0
        self._last_face = normalize_landmarks(points)[self.union]
        landmarks_s = time.monotonic() - started
        classify_started = time.monotonic()
        window = self._timed_window(captured_at) if self.timed is not None else self._counted_window()
        if window is None:
            return None
        scores = self.classifier.classify(window)
        classify_s = time.monotonic() - classify_started
        label = self.classifier.label(scores)
        explanation = self.explanations.explain(scores, label) if self.explanations is not None else None
        payload = self.publisher.publish_prediction(
            self.stream, captured_at=captured_at, face_found=True, scores=scores.tolist(), label=label,
            landmarks=len(self.union), k=self._k, bundle=self.bundle.bundle_id,
            latency={"capture": read_s, "wait": started - captured_at, "landmarks": landmarks_s,
                     "classify": classify_s},
            explanation=explanation,
        )
        self.last_scores, self.last_label = scores, label
        self.metrics.prediction(label)
        self.metrics.observe_latency(payload["latency"])
        return payload

    def frame_time(self, captured_at: float) -> float:
        """The frame's time in seconds: video time for a file read faster than filmed, else its capture time."""
        return self._frames_seen * self.frame_interval_s if self.frame_interval_s is not None else captured_at

    def _counted_window(self) -> np.ndarray | None:
        """The per-emotion models' window: the last P frames at the stride, counted in frames."""
        self.buffer.append(self._last_face)
        if not self.buffer.is_full(self.bundle.frames, self.bundle.frame_stride) or not self._due():
            return None
        return self.buffer.window(self.bundle.frame_stride, self.bundle.frames, self._window)

    def _timed_window(self, captured_at: float) -> np.ndarray | None:
        """The fused pair's window: this frame encoded, then the P encodings nearest the trained times."""
        self._encoding = self.classifier.encode(self._last_face)
        self.timed.append(self._encoding, self.frame_time(captured_at))
        if self.explanations is not None:
            self.explanations.observe(self._last_face, self.frame_time(captured_at))
        window = self.timed.take()
        if window is None:
            if self.timed.refused != "filling":  # frames missing: say so, never stretch the window in time
                self.metrics.window_refused()
            return None
        return window if self._due() else None

    def _due(self) -> bool:
        """Whether this full window is one of every ``every``-th to classify."""
        self._frames_since_full += 1
        return (self._frames_since_full - 1) % self.every == 0

    def _no_face(self, captured_at: float) -> None:
        self._missed += 1
        if self._last_face_at is None:
            gone_for = None
        elif self.frame_interval_s is not None:
            gone_for = self._missed * self.frame_interval_s
        else:
            gone_for = captured_at - self._last_face_at
        if gone_for is not None and gone_for <= self.face_gap_s:
            # A short miss (a blink of the tracker): hold the last face so the window keeps its timing,
            # as training fills missing frames from their neighbours.
            if self.timed is not None:
                self.timed.append(self._encoding, self.frame_time(captured_at))
                if self.explanations is not None:
                    self.explanations.observe(None, self.frame_time(captured_at))
            else:
                self.buffer.append(self._last_face)
            return
        if self._face_present is not False:
            self._face_present = False
            self.buffer.clear()
            if self.timed is not None:
                self.timed.clear()
            if self.explanations is not None:
                self.explanations.clear()
            self._frames_since_full = 0
            self.publisher.publish_status(self.stream, "no_face")


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


class _SignallingSlot(LatestFrameSlot):
    """A frame slot that also sets ``ready`` when a frame arrives or the producer ends, so one loop can
    wait for whichever of several sources has something."""

    def __init__(self, ready: threading.Event) -> None:
        super().__init__()
        self._ready = ready

    def put(self, frame: np.ndarray, captured_at: float, read_s: float = 0.0) -> None:
        super().put(frame, captured_at, read_s)
        self._ready.set()

    def close(self, error: BaseException | None = None) -> None:
        super().close(error)
        self._ready.set()


class _Feed:
    """One stream's source as the processing loop sees it: ``next()`` gives a frame that is ready now, or
    None; ``ended`` once the source has ended. A threaded feed is captured on its own thread (live and
    paced sources); an unthreaded one is read on the loop's thread, every frame, as fast as it decodes."""

    def __init__(self, stream: str, source: FrameSource, threaded: bool, ready: threading.Event,
                 metrics: StreamMetrics) -> None:
        self.stream, self.source, self.metrics = stream, source, metrics
        self.capture = CaptureThread(source, _SignallingSlot(ready)) if threaded else None
        self.ended = False
        self._dropped = 0

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

    def next(self) -> tuple[np.ndarray, float, float] | None:
        if self.capture is None:
            started = time.monotonic()
            item = self.source.read()
            if item is None:
                self.ended = True
                return None
            return item[0], item[1], item[1] - started
        slot = self.capture.slot
        item = slot.take(timeout_s=0)
        if slot.dropped > self._dropped:
            self.metrics.frames_dropped(slot.dropped - self._dropped)
            self._dropped = slot.dropped
        if item is None and slot.ended:
            self.ended = True
        return item

    def close(self) -> None:
        if self.capture is not None:
            self.capture.stop()
        else:
            self.source.close()


def serve(options: ServeOptions) -> int:
    """Run until every source has ended, or SIGINT/SIGTERM; returns the exit code."""
    from edgeemo.landmarker import FaceMeshLandmarker

    if options.device not in PROVIDERS:
        raise EdgeemoError(f"--device {options.device}: expected one of {', '.join(PROVIDERS)}")
    if options.show:
        check_display()
    streams = stream_ids(options.cameras, options.streams)
    stop = threading.Event()
    ready = threading.Event()  # set by capture threads: a frame or an event is waiting
    events: queue.SimpleQueue = queue.SimpleQueue()
    # Bind (or connect) first: subscribers can connect while the models and MediaPipe load.
    with PredictionPublisher(options.connect or options.bind, connect=options.connect is not None,
                             curve=_curve_keys(options), sndhwm=options.sndhwm) as publisher:
        bundle = load_bundle(options.model or _default_bundle())
        metrics = Metrics(bundle=bundle.bundle_id)
        server = serve_metrics(metrics.registry, options.metrics_host, options.metrics_port) if options.metrics_port else None
        feeds = [_feed(camera, stream, options, events, ready, metrics.stream(stream))
                 for camera, stream in zip(options.cameras, streams)]
        previous = {s: signal.signal(s, lambda *_: _interrupt(stop, feeds)) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with contextlib.ExitStack() as stack:
                processors = {}
                for feed in feeds:
                    # Each stream its own face tracker and models: neither holds state another may see.
                    landmarker = stack.enter_context(FaceMeshLandmarker(static=False))
                    classifier = make_classifier(bundle, PROVIDERS[options.device], options.threads)
                    explanations = LiveExplanations(classifier, options.explain_every, threads=options.threads,
                                                    emotion=options.explain_emotion,
                                                    landmarks=options.explain_landmarks) if options.explain else None
                    processors[feed.stream] = StreamProcessor(feed.stream, bundle, classifier, landmarker, publisher,
                                                              feed.metrics, options.every, options.face_gap_s,
                                                              explanations)
                for feed in feeds:
                    publisher.publish_status(feed.stream, "started", f"{feed.source.name}; bundle {bundle.bundle_id}")
                for feed in feeds:
                    feed.open()
                    stack.callback(feed.close)
                    processors[feed.stream].frame_interval_s = feed.video_frame_interval()
                _process(feeds, processors, publisher, events, ready, stop, options.show)
            for feed in feeds:
                publisher.publish_status(feed.stream, "shutting_down", "signal" if stop.is_set() else "source ended")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if server is not None:
                server.close()
            if options.show:
                cv2.destroyAllWindows()
    return 0


def _process(feeds: list[_Feed], processors: dict[str, StreamProcessor], publisher: PredictionPublisher,
             events: queue.SimpleQueue, ready: threading.Event, stop: threading.Event, show: bool) -> None:
    """Take turns over the streams, one frame each, until every source has ended, ``stop`` is set or the
    user pressed q in a window."""
    metrics = {feed.stream: feed.metrics for feed in feeds}
    quit_pressed = False
    while not (stop.is_set() or quit_pressed):
        ready.clear()  # before looking: a frame that arrives after the look sets it again
        active = [feed for feed in feeds if not feed.ended]
        if not active:
            break
        processed = False
        for feed in active:
            item = feed.next()
            if item is None:
                continue
            processed = True
            processor = processors[feed.stream]
            processor.process(*item)
            quit_pressed = quit_pressed or (show and _show(item[0], processor))
        _forward_events(events, publisher, metrics)
        if not processed:
            # Wake for the next frame or event; at least every 0.2 s, to notice ``stop``.
            ready.wait(0.2)
    _forward_events(events, publisher, metrics)


def _feed(camera: str, stream: str, options: ServeOptions, events: queue.SimpleQueue, ready: threading.Event,
          metrics: StreamMetrics) -> _Feed:
    spec = str(DEMO_CLIP) if camera == "demo" else camera

    def on_event(event: str, detail: str) -> None:  # runs on the thread reading the source
        events.put((stream, event, detail))
        ready.set()

    source = ReopeningSource(make_source(spec, pace=options.pace), on_event=on_event)
    return _Feed(stream, source, source.live or options.pace, ready, metrics)


def _interrupt(stop: threading.Event, feeds: list[_Feed]) -> None:
    """The signal handler: only flags and interrupts, as it may run while this thread holds any lock."""
    stop.set()
    for feed in feeds:
        feed.source.interrupt()


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
    """Publish the capture threads' events from this thread (a ZeroMQ socket belongs to one thread)."""
    while True:
        try:
            stream, event, detail = events.get_nowait()
        except queue.Empty:
            return
        if event == "reconnected":
            metrics[stream].source_reopened()
        publisher.publish_status(stream, event, detail)


def draw_overlay(frame: np.ndarray, processor: StreamProcessor) -> np.ndarray:
    """A copy of ``frame`` with the landmarks the bundle reads (green dots), the six scores as bars and the label."""
    view = frame.copy()
    if processor.last_points is not None:
        explained = processor.explanations.last if processor.explanations is not None else None
        colours = region_colours(explained, processor.union) if explained else None  # --explain: by region
        for i, (x, y) in enumerate(processor.last_points[processor.union].astype(int)):
            colour = LANDMARK_COLOUR if colours is None else tuple(int(c) for c in colours[i])
            cv2.circle(view, (int(x), int(y)), 1 if colours is None else 2, colour, -1)
    if processor.last_scores is not None:
        for i, (emotion, score) in enumerate(zip(EMOTIONS, processor.last_scores)):
            y = 20 + 18 * i
            cv2.rectangle(view, (SCORE_BAR_X, y - 10), (SCORE_BAR_X + int(SCORE_BAR_PX * score), y), SCORE_COLOUR, -1)
            cv2.putText(view, emotion, (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        cv2.putText(view, processor.last_label or "", (5, 20 + 18 * 6 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 255, 255), 2)
    return view


def check_display() -> None:
    """Refuse ``--show`` where no window can open: there OpenCV's Qt aborts the process, with no Python error."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeemoError("--show: no display to open a window on (DISPLAY is not set); "
                           "run without --show, or in a desktop session")


def _show(frame: np.ndarray, processor: StreamProcessor) -> bool:
    """Show the overlay in the stream's window; True when the user pressed q."""
    try:
        cv2.imshow(f"edgeemo {processor.stream}", draw_overlay(frame, processor))
        return (cv2.waitKey(1) & 0xFF) == ord("q")
    except cv2.error as exc:
        raise EdgeemoError(f"--show: cannot open a window here ({str(exc).splitlines()[0][:80]})") from None
