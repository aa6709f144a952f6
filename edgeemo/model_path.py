"""One bundle's models as one face track feeds them: each frame in, a window out once one is full.

With the fused streaming pair (``edgeemo.streaming``) each frame is encoded once, on arrival, and windows
are picked by time, as trained; otherwise the per-emotion models read a window counted in frames. A face
track of a calibrated bundle has two paths, the uncalibrated bundle's and the calibrated one's
(``edgeemo.face_track``); each keeps its own window.
"""

from __future__ import annotations

import numpy as np

from edgeemo.bundle import ModelBundle
from edgeemo.classifier import EmotionClassifier
from edgeemo.live_explanations import LiveExplanations
from edgeemo.ringbuffer import RingBuffer
from edgeemo.streaming import StreamingClassifier, TimedWindow


class ModelPath:
    """A window over one face's frames for one classifier. Not thread-safe: one per face track."""

    def __init__(self, bundle: ModelBundle, classifier: EmotionClassifier | StreamingClassifier,
                 explanations: LiveExplanations | None = None) -> None:
        self.bundle, self.classifier, self.explanations = bundle, classifier, explanations
        self.union = bundle.landmarks_union
        self.landmark_counts = {m.emotion: len(m.landmarks) for m in bundle.models}  # K of each emotion's model
        self.timed = TimedWindow(bundle, classifier.width) if isinstance(classifier, StreamingClassifier) else None
        self.buffer = None if self.timed else RingBuffer.for_window(bundle.frames, bundle.frame_stride,
                                                                    len(self.union))
        self._window = np.zeros((bundle.frames, 2, len(self.union)), np.float32)
        self._last: np.ndarray | None = None  # the last frame appended: an encoding, or the union's landmarks
        self.refused: str | None = None  # why the last window() gave None, if frames were missing

    def append(self, face: np.ndarray, at: float) -> None:
        """One frame: the face's union landmarks [U, 2] (in the representation the models read) at ``at``."""
        if self.timed is not None:
            self._last = self.classifier.encode(face)
            self.timed.append(self._last, at)
        else:
            self._last = face
            self.buffer.append(face)
        if self.explanations is not None:
            self.explanations.observe(face, at)

    def hold(self, at: float) -> None:
        """A short miss: the last frame again, so that the window keeps its timing (as training fills gaps)."""
        if self._last is None:
            return
        if self.timed is not None:
            self.timed.append(self._last, at)
        else:
            self.buffer.append(self._last)
        if self.explanations is not None:
            self.explanations.observe(None, at)

    def classify_still(self, face: np.ndarray) -> np.ndarray:
        """Scores [6] (a copy) for ``face`` [U, 2] held still over a whole window; the path's own window is
        left as it is (the second look of edgeemo.face_track asks this of faces it is not fed)."""
        if self.timed is not None:
            encoding = self.classifier.encode(face)
            return self.classifier.classify(np.broadcast_to(encoding, (self.bundle.frames, len(encoding)))).copy()
        return self.classifier.classify(np.broadcast_to(face.T, (self.bundle.frames, *face.T.shape))).copy()

    def window(self) -> np.ndarray | None:
        """The window ending at the newest frame (a reused array), or None while filling or frames are missing."""
        if self.timed is None:
            if not self.buffer.is_full(self.bundle.frames, self.bundle.frame_stride):
                return None
            return self.buffer.window(self.bundle.frame_stride, self.bundle.frames, self._window)
        window = self.timed.take()
        self.refused = self.timed.refused if window is None and self.timed.refused != "filling" else None
        return window
