"""Six emotion scores for one window of landmarks, with ONNX Runtime, and their fusion into one label."""

from __future__ import annotations

import numpy as np

from edgeemo.bundle import ModelBundle
from edgeemo.emotions import EMOTIONS, NEUTRAL


def fuse(scores: np.ndarray, thresholds: np.ndarray) -> str:
    """The emotion with the highest score among those past their threshold (the first of a tie), else neutral."""
    # Six scalars in Python: serve calls this right after the face mesh, where numpy's four calls on six
    # numbers ran from cold caches and took 30 us.
    label, best = NEUTRAL, -np.inf
    for emotion, score, threshold in zip(EMOTIONS, scores.tolist(), thresholds.tolist()):
        if score >= threshold and score > best:
            label, best = emotion, score
    return label


class EmotionClassifier:
    """Runs a bundle's six models on a window [frames, 2, U] of the union's U landmarks.

    Not thread-safe (it reuses its input buffers): make one per thread.
    """

    uncalibrated = None  # a calibrated bundle's uncalibrated classifier (edgeemo.streaming.make_classifier)

    def __init__(self, bundle: ModelBundle, providers: tuple[str, ...] = ("CPUExecutionProvider",), threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.bundle = bundle
        self.union = bundle.landmarks_union
        self._sessions = [
            onnxruntime.InferenceSession(str(m.path), sess_options=options, providers=list(providers))
            for m in bundle.models
        ]
        # Where each model's landmarks sit inside the union, and one input buffer per model, made once.
        self._positions = [np.searchsorted(self.union, m.landmarks) for m in bundle.models]
        self._inputs = [np.zeros((1, bundle.frames, 2, len(m.landmarks), 1), np.float32) for m in bundle.models]
        self._names = [m.input_name for m in bundle.models]
        self.thresholds = bundle.thresholds
        self.scores = np.zeros(len(EMOTIONS), np.float32)

    def __str__(self) -> str:
        return "six per-emotion models"

    def classify(self, window: np.ndarray) -> np.ndarray:
        """Scores [6] (probability of each emotion) for a window [frames, 2, U]; the array is reused."""
        for i, (session, positions, buffer, name) in enumerate(
            zip(self._sessions, self._positions, self._inputs, self._names)
        ):
            np.take(window, positions, axis=2, out=buffer[0, :, :, :, 0], mode="clip")
            self.scores[i] = session.run(None, {name: buffer})[0][0, 1]
        return self.scores

    def label(self, scores: np.ndarray) -> str:
        return fuse(scores, self.thresholds)
