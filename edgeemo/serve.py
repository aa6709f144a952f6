"""``edgeemo serve``: frames -> face mesh -> selected landmarks -> ring buffer -> six models -> ZeroMQ.

One stream per process. The capture runs on its own thread and hands over only the newest frame
(``LatestFrameSlot``), so a pipeline slower than a live camera drops frames and counts them instead of
falling behind; files read as fast as possible are read on the pipeline's thread, every frame processed.
"""

from __future__ import annotations

import queue
import signal
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
from edgeemo.messages import DEFAULT_ENDPOINT
from edgeemo.metrics import DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT, Metrics, StreamMetrics, serve_metrics
from edgeemo.normalize import normalize_landmarks
from edgeemo.publisher import PredictionPublisher
from edgeemo.ringbuffer import RingBuffer
from edgeemo.sources import CaptureThread, FrameSource, ReopeningSource, make_source

DEMO_CLIP = Path(__file__).parent / "resources" / "demo" / "smile.mp4"
PROVIDERS = {"cpu": ("CPUExecutionProvider",), "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider")}


@dataclass(frozen=True)
class ServeOptions:
    camera: str = "0"
    model: Path | None = None
    stream: str = "cam0"
    bind: str = DEFAULT_ENDPOINT
    metrics_host: str = DEFAULT_METRICS_HOST
    metrics_port: int = DEFAULT_METRICS_PORT  # 0: no metrics endpoint
    every: int = 1  # classify every n-th frame once the window is full
    threads: int = 1  # ONNX Runtime intra-op threads
    device: str = "cpu"
    pace: bool = True  # files play at their own frame rate; False: as fast as possible, no frame dropped
    face_gap_s: float = 0.5  # a face gone longer than this empties the window
    sndhwm: int = 100
    show: bool = False


class StreamProcessor:
    """One stream's per-frame work after capture. Not thread-safe: one per stream, on one thread."""

    def __init__(self, stream: str, bundle: ModelBundle, classifier: EmotionClassifier, landmarker,
                 publisher: PredictionPublisher, metrics: StreamMetrics, every: int = 1, face_gap_s: float = 0.5):
        self.stream, self.bundle, self.classifier = stream, bundle, classifier
        self.landmarker, self.publisher, self.metrics = landmarker, publisher, metrics
        self.every, self.face_gap_s = every, face_gap_s
        self.union = bundle.landmarks_union
        self.buffer = RingBuffer.for_window(bundle.frames, bundle.frame_stride, len(self.union))
        self._window = np.zeros((bundle.frames, 2, len(self.union)), np.float32)
        self._rgb: np.ndarray | None = None
        self._k = {m.emotion: len(m.landmarks) for m in bundle.models}
        self._face_present: bool | None = None  # None until the first frame
        self._last_face_at: float | None = None
        self._last_face: np.ndarray | None = None
        self._frames_since_full = 0
        self.last_scores: np.ndarray | None = None
        self.last_label: str | None = None
        self.last_points: np.ndarray | None = None

    def process(self, frame: np.ndarray, captured_at: float, read_s: float) -> dict | None:
        """Handle one BGR frame; return the prediction published, or None."""
        started = time.monotonic()
        self.metrics.frame()
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
        self._last_face_at = captured_at
        self._last_face = normalize_landmarks(points)[self.union]
        self.buffer.append(self._last_face)
        landmarks_s = time.monotonic() - started
        if not self.buffer.is_full(self.bundle.frames, self.bundle.frame_stride):
            return None
        self._frames_since_full += 1
        if (self._frames_since_full - 1) % self.every:
            return None
        self.buffer.window(self.bundle.frame_stride, self.bundle.frames, self._window)
        classify_started = time.monotonic()
        scores = self.classifier.classify(self._window)
        classify_s = time.monotonic() - classify_started
        label = self.classifier.label(scores)
        payload = self.publisher.publish_prediction(
            self.stream, captured_at=captured_at, face_found=True, scores=scores.tolist(), label=label,
            landmarks=len(self.union), k=self._k, bundle=self.bundle.bundle_id,
            latency={"capture": read_s, "wait": started - captured_at, "landmarks": landmarks_s,
                     "classify": classify_s},
        )
        self.last_scores, self.last_label = scores, label
        self.metrics.prediction(label)
        self.metrics.observe_latency(payload["latency"])
        return payload

    def _no_face(self, captured_at: float) -> None:
        gone_for = None if self._last_face_at is None else captured_at - self._last_face_at
        if gone_for is not None and gone_for <= self.face_gap_s:
            # A short miss (a blink of the tracker): hold the last face so the window keeps its timing,
            # as training fills missing frames from their neighbours.
            self.buffer.append(self._last_face)
            return
        if self._face_present is not False:
            self._face_present = False
            self.buffer.clear()
            self._frames_since_full = 0
            self.publisher.publish_status(self.stream, "no_face")


def _open_source(options: ServeOptions, events: queue.SimpleQueue) -> FrameSource:
    spec = str(DEMO_CLIP) if options.camera == "demo" else options.camera
    return ReopeningSource(make_source(spec, pace=options.pace), on_event=lambda e, d: events.put((e, d)))


def _frames(source: FrameSource, threaded: bool, stop: threading.Event, dropped_to: StreamMetrics):
    """Yield (frame, captured_at, read_s) until the source ends or ``stop`` is set; from a capture thread,
    also None every 0.2 s without a frame, so the caller can publish events while a lost source reopens."""
    if not threaded:
        source.open()
        try:
            while not stop.is_set():
                started = time.monotonic()
                item = source.read()
                if item is None:
                    return
                yield item[0], item[1], item[1] - started
        finally:
            source.close()
        return
    with CaptureThread(source) as capture:
        dropped = 0
        while not stop.is_set():
            item = capture.slot.take(timeout_s=0.2)
            if capture.slot.dropped > dropped:
                dropped_to.frames_dropped(capture.slot.dropped - dropped)
                dropped = capture.slot.dropped
            if item is None and capture.slot.ended:
                return
            yield item


def serve(options: ServeOptions) -> int:
    """Run until the source ends or SIGINT/SIGTERM; returns the exit code."""
    from edgeemo.landmarker import FaceMeshLandmarker

    if options.device not in PROVIDERS:
        raise EdgeemoError(f"--device {options.device}: expected one of {', '.join(PROVIDERS)}")
    stop = threading.Event()
    events: queue.SimpleQueue = queue.SimpleQueue()
    # Bind first: subscribers can connect while the models and MediaPipe load.
    with PredictionPublisher(options.bind, sndhwm=options.sndhwm) as publisher:
        bundle = load_bundle(options.model or _default_bundle())
        metrics = Metrics(bundle=bundle.bundle_id)
        stream_metrics = metrics.stream(options.stream)
        server = serve_metrics(metrics.registry, options.metrics_host, options.metrics_port) if options.metrics_port else None
        source = _open_source(options, events)
        previous = {s: signal.signal(s, lambda *_: (stop.set(), source.interrupt())) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            classifier = EmotionClassifier(bundle, PROVIDERS[options.device], options.threads)
            with FaceMeshLandmarker(static=False) as landmarker:
                processor = StreamProcessor(options.stream, bundle, classifier, landmarker, publisher,
                                            stream_metrics, options.every, options.face_gap_s)
                publisher.publish_status(options.stream, "started", f"{source.name}; bundle {bundle.bundle_id}")
                threaded = source.live or options.pace
                for item in _frames(source, threaded, stop, stream_metrics):
                    _forward_events(events, publisher, options.stream, stream_metrics)
                    if item is None:
                        continue
                    processor.process(*item)
                    if options.show and _show(item[0], processor):
                        break
                _forward_events(events, publisher, options.stream, stream_metrics)
            publisher.publish_status(options.stream, "shutting_down", "signal" if stop.is_set() else "source ended")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if server is not None:
                server.close()
            if options.show:
                cv2.destroyAllWindows()
    return 0


def _default_bundle() -> Path:
    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        raise EdgeemoError(f"--model: no default model bundle at {DEFAULT_BUNDLE}; pass --model BUNDLE")
    return DEFAULT_BUNDLE


def _forward_events(events: queue.SimpleQueue, publisher: PredictionPublisher, stream: str,
                    metrics: StreamMetrics) -> None:
    """Publish the capture thread's events from this thread (a ZeroMQ socket belongs to one thread)."""
    while True:
        try:
            event, detail = events.get_nowait()
        except queue.Empty:
            return
        if event == "reconnected":
            metrics.source_reopened()
        publisher.publish_status(stream, event, detail)


def _show(frame: np.ndarray, processor: StreamProcessor) -> bool:
    """Draw the face, the landmarks the bundle reads and the six scores; True when the user pressed q."""
    view = frame.copy()
    if processor.last_points is not None:
        for x, y in processor.last_points[processor.union].astype(int):
            cv2.circle(view, (int(x), int(y)), 1, (0, 255, 0), -1)
    if processor.last_scores is not None:
        for i, (emotion, score) in enumerate(zip(EMOTIONS, processor.last_scores)):
            y = 20 + 18 * i
            cv2.rectangle(view, (90, y - 10), (90 + int(100 * score), y), (0, 200, 255), -1)
            cv2.putText(view, emotion, (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        cv2.putText(view, processor.last_label or "", (5, 20 + 18 * 6 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 255, 255), 2)
    try:
        cv2.imshow("edgeemo", view)
        return (cv2.waitKey(1) & 0xFF) == ord("q")
    except cv2.error as exc:
        raise EdgeemoError(f"--show: cannot open a window here ({str(exc).splitlines()[0][:80]})") from None
