"""One tracked face of one stream: its windows, missed-frame logic, resting face and predictions.

``StreamProcessor`` (``edgeemo.serve``) finds the faces of a frame and keeps one ``FaceTrack`` per face id
(``edgeemo.tracking``). A track feeds its bundle's models through a ``ModelPath`` (``edgeemo.model_path``).
With a calibrated bundle (docs/calibration.md) it also estimates the face's rest (``edgeemo.calibration``):
until the rest is known the uncalibrated bundle's models judge the face; from the frame that establishes it
on, the calibrated models read the face relative to that rest. A new track (a face gone longer than the face
gap) starts uncalibrated again.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from edgeemo.bundle import ModelBundle
from edgeemo.calibration import RestEstimator, canonical_face, smile_was_the_rest
from edgeemo.classifier import EmotionClassifier
from edgeemo.emotions import NEUTRAL
from edgeemo.errors import EdgeemoError
from edgeemo.head_pose import POSE_KEYS, beyond_training, head_pose
from edgeemo.live_explanations import LiveExplanations
from edgeemo.metrics import StreamMetrics
from edgeemo.model_path import ModelPath
from edgeemo.publisher import PredictionPublisher
from edgeemo.streaming import StreamingClassifier

CALIBRATION_MODES = ("auto", "off")
STILL_RETRY_S = 0.25  # the second look's still check, while a face called an emotion moves: 4 times a second


class FaceTrack:
    """One face's windows and predictions, from its first frame until it has been gone longer than the face gap.

    Not thread-safe: used by its stream's processor, on one thread.
    """

    def __init__(self, stream: str, face: int, bundle: ModelBundle, classifier: EmotionClassifier | StreamingClassifier,
                 publisher: PredictionPublisher, metrics: StreamMetrics, every: int = 1,
                 face_gap_s: float = 0.5,
                 explain: Callable[[StreamingClassifier], LiveExplanations] | None = None,
                 calibration: str = "auto") -> None:
        """``explain``: makes a path's explanations from its classifier (--explain); ``calibration``: "auto"
        (a calibrated bundle estimates each face's rest) or "off" (its uncalibrated models only)."""
        self.stream, self.face, self.bundle = stream, face, bundle
        self.publisher, self.metrics = publisher, metrics
        self.every, self.face_gap_s = every, face_gap_s
        if bundle.calibrated and classifier.uncalibrated is None:
            raise EdgeemoError(f"{bundle.bundle_id}: a calibrated bundle's classifier comes from "
                               "edgeemo.streaming.make_classifier (it carries the uncalibrated models too)")
        calibrated = bundle.calibrated and calibration == "auto"
        absolute = bundle.uncalibrated if bundle.calibrated else bundle
        self.absolute = ModelPath(absolute, classifier.uncalibrated if bundle.calibrated else classifier,
                                  None if explain is None else explain(classifier.uncalibrated or classifier))
        self.relative = ModelPath(bundle, classifier, None if explain is None else explain(classifier)) \
            if calibrated else None
        self.rest = RestEstimator(len(canonical_face()), bundle.rest_settings) if calibrated else None
        self._canonical = canonical_face(bundle.landmarks_union) if calibrated else None
        self._offset: np.ndarray | None = None  # canonical - rest at the calibrated union, once the rest is known
        self.calibration = "off" if bundle.calibrated and not calibrated else "auto" if calibrated else "absolute"
        self._last_face_at: float | None = None
        self._missed = 0  # frames without this face since it was last found
        self._frames_since_full = 0
        self.last_scores: np.ndarray | None = None
        self.last_label: str | None = None
        self.last_points: np.ndarray | None = None
        self.last_box: tuple[float, float, float, float] | None = None  # pixels x0, y0, x1, y1
        self._rest_requested = False
        self._emotion_since: float | None = None  # since when the calibrated models call the face an emotion
        self._looked_at = -np.inf  # when the second look last ran
        self._look_wait = 0.0  # seconds after _looked_at until it may run again (doubles while an emotion lasts)

    @property
    def path(self) -> ModelPath:
        """The models judging this face now: the calibrated ones once its rest is known."""
        return self.relative if self._offset is not None else self.absolute

    @property
    def explanations(self) -> LiveExplanations | None:
        return self.path.explanations

    def request_rest(self) -> None:
        """"This is rest now": the next frame takes the last seconds of this face as its rest."""
        self._rest_requested = True

    def found(self, points: np.ndarray, box: tuple[float, float, float, float], normalized: np.ndarray,
              frame_shape: tuple[int, ...], captured_at: float, read_s: float, started: float, landmarks_s: float,
              at: float | None = None) -> dict | None:
        """This face in this frame (pixels [468, 2], its ``edgeemo.tracking.face_box``, normalised [468, 2]);
        return the prediction published, or None.

        ``at``: the frame's time in seconds (video time for a file read with --fast); None: ``captured_at``."""
        at = captured_at if at is None else at
        self._last_face_at, self._missed = captured_at, 0
        self.last_points, self.last_box = points, box
        classify_started = time.monotonic()
        path = self.path
        path.append(self._model_input(path, normalized), at)
        window = path.window()
        if path.refused:  # frames missing: say so, never stretch the window in time
            self.metrics.window_refused()
        due = window is not None and self._due()
        scores = path.classifier.classify(window) if due else None
        label = path.classifier.label(scores) if due else None
        if self.rest is not None and self._calibrate(normalized, at, scores, label):
            path = self.relative  # the rest was established by this frame: the calibrated models say it
            window = path.window()
            scores = path.classifier.classify(window) if window is not None else None
            label = path.classifier.label(scores) if window is not None else None
        if scores is None:
            return None
        classify_s = time.monotonic() - classify_started
        explanation = path.explanations.explain(scores, label) if path.explanations is not None else None
        height, width = frame_shape[:2]
        pose = head_pose(points, width, height)
        payload = self.publisher.publish_prediction(
            self.stream, captured_at=captured_at, face_found=True, scores=scores.tolist(), label=label,
            landmarks=len(path.union), k=path.landmark_counts,
            bundle=self.bundle.bundle_id,
            latency={"capture": read_s, "wait": started - captured_at, "landmarks": landmarks_s,
                     "classify": classify_s},
            face=self.face, box=[v / side for v, side in zip(box, (width, height) * 2)],
            pose=None if pose is None else dict(zip(POSE_KEYS, pose)),
            pose_beyond_training=None if pose is None else beyond_training(pose), explanation=explanation,
            calibration=self.calibration_state(at),
        )
        # The classifier reuses its scores array for the next face: keep a copy.
        self.last_scores, self.last_label = scores.copy(), label
        self.metrics.prediction(label)
        self.metrics.observe_latency(payload["latency"])
        return payload

    def calibration_state(self, at: float) -> dict:
        """The prediction's ``calibration`` map (docs/contracts/messages.md)."""
        state = self.rest.state(at) if self.rest is not None else {"calibrated": False, "frames": 0, "age_s": 0.0}
        return {"mode": self.calibration, **state}

    def missed(self, captured_at: float, frame_interval_s: float | None, at: float | None = None) -> bool:
        """This face was not found in this frame; True once it has been gone longer than the face gap (the
        track ends: the caller drops it, and with it the face's rest)."""
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
            self.path.hold(captured_at if at is None else at)
            return False
        return True

    def _model_input(self, path: ModelPath, normalized: np.ndarray) -> np.ndarray:
        """The face as ``path``'s models read it: absolute, or relative to the rest (edgeemo.calibration)."""
        if path is self.relative:
            return normalized[path.union] + self._offset
        return normalized[path.union]

    def _calibrate(self, normalized: np.ndarray, at: float, scores: np.ndarray | None, label: str | None) -> bool:
        """Feed the rest estimator this frame (the uncalibrated scores while bootstrapping, the calibrated label
        after); True when the rest was established now, by the estimator or on request (the calibrated path is
        then filled with the estimator's recent frames, encoded relative to the new rest)."""
        rest = self.rest
        second_look = False
        if not rest.calibrated:
            established = rest.observe(normalized, at, scores=scores)
        else:
            rest.observe(normalized, at, neutral=None if label is None else label == NEUTRAL)
            if label == NEUTRAL:
                self._emotion_since, self._look_wait = None, 0.0
            elif label is not None and self._emotion_since is None:
                self._emotion_since = at
            second_look = established = label not in (None, NEUTRAL) and self._second_look(at)
            self._offset = self._canonical - rest.rest[self.relative.union]
        if self._rest_requested:
            self._rest_requested = False
            second_look = False
            established = rest.set_now(at) or established
        if established:
            self._start_relative(at, "; the rest before was a smile (second look)" if second_look else "")
        return established

    def _second_look(self, at: float) -> bool:
        """Whether the face, now still and called an emotion against its rest, shows that its rest was a smile the
        uncalibrated models missed (edgeemo.calibration.smile_was_the_rest); if so the still state is the rest.
        Never for a rest set on request. The still stretch must lie wholly after the label turned to an emotion
        (so that it shows the state the label is about), and the wait doubles after each look that keeps the
        rest: a held expression is examined 1, 2, 4, 8 ... s into it, not every second (a neutral label starts
        afresh)."""
        rest = self.rest
        if (rest.how != "auto" or at - self._emotion_since < rest.settings.bootstrap_s
                or at - self._looked_at < self._look_wait):
            return False
        self._looked_at = at
        still = rest.still(at)
        if still is None:  # moving: asked again a little later (the still check is a median over a second)
            self._look_wait = max(self._look_wait, STILL_RETRY_S)
            return False
        face, frames = still
        self._look_wait = max(2 * self._look_wait, rest.settings.bootstrap_s)
        relative, absolute = self.relative, self.absolute
        against = relative.classify_still(rest.rest[relative.union] - face[relative.union] + self._canonical)
        if not smile_was_the_rest(against, absolute.classify_still(rest.rest[absolute.union]),
                                  absolute.classify_still(face[absolute.union]), relative.classifier.thresholds,
                                  absolute.classifier.thresholds):
            return False
        rest.replace(face, frames, at)
        return True

    def _start_relative(self, at: float, why: str = "") -> None:
        relative = self.relative
        self._offset = self._canonical - self.rest.rest[relative.union]
        relative.timed.clear()
        if relative.explanations is not None:
            relative.explanations.clear()
            # At rest a rest-relative face is the canonical face: that baseline is this person's own rest now.
            relative.explanations.explainer.set_rest(self._canonical)
        frames, times = self.rest.recent_frames(at - self.bundle.window_s - relative.timed.tolerance_s)
        for face, t in zip(frames, times):
            relative.append(self._model_input(relative, face), float(t))
        self.publisher.publish_status(self.stream, "rest_established",
                                      f"{self.rest.how}: rest from {self.rest.frames} frames{why}", face=self.face)
        self.metrics.rest_established()

    def _due(self) -> bool:
        """Whether this full window is one of every ``every``-th to classify."""
        self._frames_since_full += 1
        return (self._frames_since_full - 1) % self.every == 0
