"""One tracked face of one stream: its own ring buffer, window, missed-frame logic and predictions.

With a bundle's fused streaming pair (``edgeemo.streaming``) each of the face's frames is encoded once, on
arrival, and its windows are picked by time, as trained; otherwise the per-emotion models read a window
counted in frames.

``StreamProcessor`` (``edgeemo.serve``) finds the faces of a frame and keeps one ``FaceTrack`` per face id
(``edgeemo.tracking``); this holds what it held when it followed a single face.
"""

from __future__ import annotations

import time

import numpy as np

from edgeemo.bundle import ModelBundle
from edgeemo.classifier import EmotionClassifier
from edgeemo.head_pose import POSE_KEYS, beyond_training, head_pose
from edgeemo.live_explanations import LiveExplanations
from edgeemo.metrics import StreamMetrics
from edgeemo.publisher import PredictionPublisher
from edgeemo.ringbuffer import RingBuffer
from edgeemo.streaming import StreamingClassifier, TimedWindow
from edgeemo.tracking import face_box


class FaceTrack:
    """One face's window and predictions, from its first frame until it has been gone longer than the face gap.

    Not thread-safe: used by its stream's processor, on one thread.
    """

    def __init__(self, stream: str, face: int, bundle: ModelBundle, classifier: EmotionClassifier,
                 publisher: PredictionPublisher, metrics: StreamMetrics, every: int = 1,
                 face_gap_s: float = 0.5, explanations: LiveExplanations | None = None) -> None:
        self.stream, self.face, self.bundle, self.classifier = stream, face, bundle, classifier
        self.explanations = explanations  # --explain: this face's window of faces and the rate
        self.publisher, self.metrics = publisher, metrics
        self.every, self.face_gap_s = every, face_gap_s
        self.union = bundle.landmarks_union
        self.buffer = RingBuffer.for_window(bundle.frames, bundle.frame_stride, len(self.union))
        self._window = np.zeros((bundle.frames, 2, len(self.union)), np.float32)
        # The fused pair (a bundle that has one): windows by capture time (edgeemo.streaming, docs/streaming.md).
        self.timed = TimedWindow(bundle, classifier.width) if isinstance(classifier, StreamingClassifier) else None
        self._encoding: np.ndarray | None = None
        self._k = {m.emotion: len(m.landmarks) for m in bundle.models}
        self._last_face_at: float | None = None
        self._missed = 0  # frames without this face since it was last found
        self._last_face: np.ndarray | None = None
        self._frames_since_full = 0
        self.last_scores: np.ndarray | None = None
        self.last_label: str | None = None
        self.last_points: np.ndarray | None = None
        self.last_box: np.ndarray | None = None  # pixels x0, y0, x1, y1

    def found(self, points: np.ndarray, normalized: np.ndarray, frame_shape: tuple[int, ...], captured_at: float,
              read_s: float, started: float, landmarks_s: float, at: float | None = None) -> dict | None:
        """This face in this frame (pixels [468, 2], normalised [468, 2]); return the prediction published, or None.

        ``at``: the frame's time in seconds (video time for a file read with --fast); None: ``captured_at``."""
        self._last_face_at, self._missed = captured_at, 0
        self.last_points, self.last_box = points, face_box(points)
        self._last_face = normalized[self.union]
        classify_started = time.monotonic()
        window = self._timed_window(captured_at if at is None else at) if self.timed is not None else self._counted_window()
        if window is None:
            return None
        scores = self.classifier.classify(window)
        classify_s = time.monotonic() - classify_started
        label = self.classifier.label(scores)
        explanation = self.explanations.explain(scores, label) if self.explanations is not None else None
        height, width = frame_shape[:2]
        pose = head_pose(points, width, height)
        payload = self.publisher.publish_prediction(
            self.stream, captured_at=captured_at, face_found=True, scores=scores.tolist(), label=label,
            landmarks=len(self.union), k=self._k, bundle=self.bundle.bundle_id,
            latency={"capture": read_s, "wait": started - captured_at, "landmarks": landmarks_s,
                     "classify": classify_s},
            face=self.face, box=self.last_box / np.array([width, height, width, height]),
            pose=None if pose is None else dict(zip(POSE_KEYS, pose)),
            pose_beyond_training=None if pose is None else beyond_training(pose), explanation=explanation,
        )
        # The classifier reuses its scores array for the next face: keep a copy.
        self.last_scores, self.last_label = scores.copy(), label
        self.metrics.prediction(label)
        self.metrics.observe_latency(payload["latency"])
        return payload

    def missed(self, captured_at: float, frame_interval_s: float | None, at: float | None = None) -> bool:
        """This face was not found in this frame; True once it has been gone longer than the face gap (the
        track ends: the caller drops it)."""
        self._missed += 1
        if self._last_face_at is None:
            gone_for = None
        elif frame_interval_s is not None:
            gone_for = self._missed * frame_interval_s
        else:
            gone_for = captured_at - self._last_face_at
        if gone_for is not None and gone_for <= self.face_gap_s:
            # A short miss (a blink of the tracker): hold the last face so the window keeps its timing,
            # as training fills missing frames from their neighbours.
            if self.timed is not None:
                self.timed.append(self._encoding, captured_at if at is None else at)
                if self.explanations is not None:
                    self.explanations.observe(None, captured_at if at is None else at)
            else:
                self.buffer.append(self._last_face)
            return False
        return True

    def _counted_window(self) -> np.ndarray | None:
        """The per-emotion models' window: the last P frames at the stride, counted in frames."""
        self.buffer.append(self._last_face)
        if not self.buffer.is_full(self.bundle.frames, self.bundle.frame_stride) or not self._due():
            return None
        return self.buffer.window(self.bundle.frame_stride, self.bundle.frames, self._window)

    def _timed_window(self, at: float) -> np.ndarray | None:
        """The fused pair's window: this frame encoded, then the P encodings nearest the trained times."""
        self._encoding = self.classifier.encode(self._last_face)
        self.timed.append(self._encoding, at)
        if self.explanations is not None:
            self.explanations.observe(self._last_face, at)
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
