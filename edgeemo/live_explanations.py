"""``--explain`` in the stream: one face track's window of raw faces beside its encodings, and the rate.

The stream keeps only encodings (edgeemo.streaming.TimedWindow); an explanation needs the window's faces
too. ``LiveExplanations`` keeps them in a TimedWindow of its own, appended at the same times as the
encodings, so its ``take`` picks the same frames. ``due`` says whether this prediction gets an explanation:
every ``every``-th prediction, and whenever the label changes (what a user wants explained most).
"""

from __future__ import annotations

import time

import numpy as np

from edgeemo.attribution import Explainer
from edgeemo.errors import EdgeemoError
from edgeemo.streaming import StreamingClassifier, TimedWindow


class LiveExplanations:
    """One face track's explanations. Not thread-safe: one per track, on its thread."""

    def __init__(self, classifier: StreamingClassifier, every: int = 1, rest: np.ndarray | None = None,
                 threads: int = 1, emotion: str | None = None, landmarks: bool = False,
                 parts: dict | None = None) -> None:
        """``parts``: the emotions' graphs, shared by the faces of one stream (``Explainer``)."""
        if not isinstance(classifier, StreamingClassifier):
            raise EdgeemoError("--explain: the model bundle has no streaming pair (edgeemo fuse adds one)")
        self.explainer = Explainer(classifier, rest, threads, parts)
        self.union_size = len(classifier.union)
        self.faces = TimedWindow(classifier.bundle, 2 * self.union_size)
        self.every = every
        self.emotion = emotion  # None: the top score's
        self.landmarks = landmarks  # add the approximate landmark-level values
        self._predictions = 0
        self._last_label: str | None = None
        self._face: np.ndarray | None = None
        self.last: dict | None = None  # the last explanation published (--show colours the face by it)

    def observe(self, face: np.ndarray | None, at: float) -> None:
        """The frame's normalised union landmarks [U, 2] at time ``at``; None holds the last face (a short miss)."""
        if face is not None:
            self._face = face
        if self._face is not None:
            self.faces.append(self._face.reshape(-1), at)

    def clear(self) -> None:
        self.faces.clear()
        self._last_label = None
        self.last = None

    def explain(self, scores: np.ndarray, label: str) -> dict | None:
        """The ``explanation`` of this prediction when one is due (else None), with the seconds it took."""
        self._predictions += 1
        changed = label != self._last_label
        self._last_label = label
        if not (changed or (self._predictions - 1) % self.every == 0):
            return None
        started = time.monotonic()
        window = self.faces.take()
        if window is None:
            return None
        explanation = self.explainer.explain(window.reshape(-1, self.union_size, 2), scores, self.emotion,
                                               self.landmarks)
        explanation["seconds"] = time.monotonic() - started
        self.last = explanation
        return explanation


def region_colours(explanation: dict, union: np.ndarray) -> np.ndarray:
    """uint8 [U, 3] BGR for --show: each landmark in its region's colour, red where the region raised the
    explained score, blue where it lowered it, grey where it did nothing; brightness by the share of the
    largest region's |value|."""
    from edgeemo.regions import REGIONS, region_of_landmark

    values = np.array([explanation["regions"].get(name, 0.0) for name in REGIONS])
    scale = np.abs(values).max() or 1.0
    share = values[region_of_landmark()[np.asarray(union)]] / scale  # [-1, 1] per landmark
    grey = np.full((len(share), 3), 90.0)
    red, blue = np.array([40.0, 40.0, 255.0]), np.array([255.0, 80.0, 40.0])
    colours = grey + np.abs(share)[:, None] * (np.where(share[:, None] >= 0, red, blue) - grey)
    return colours.astype(np.uint8)
