"""Each face judged against its own resting face: an online estimate of one face's rest, and the
representation the calibrated models read (docs/calibration.md).

People differ more at rest than an expression moves them, so a calibrated bundle's models read a face
*relative to its own rest*: the frame's displacement from the person's resting face, applied to the
canonical face (``rest_relative``). At rest that is the canonical face itself, whoever the person is; the
canonical face is also what Integrated Gradients and the live explanations take as the neutral baseline,
so "relative to the canonical rest" becomes "what changed from your own resting face".

``RestEstimator`` finds the rest of one tracked face from its normalised landmarks:
- **bootstrap**: the rest is first set once ``bootstrap_s`` seconds of the face since its last vetoed window
  are *still* (the median
  frame's RMS distance from the per-landmark median is at most ``still_rms``: an onset or speech is not,
  a blink is outvoted) and the uncalibrated model does not see an expression in them (no emotion scores
  its emotion's ``veto`` or more). The rest is the per-landmark median of those frames.
  A face that appears smiling or frowning and holds it keeps the uncalibrated model's label instead of
  becoming its own rest: its scores veto every attempt for as long as it holds the expression.
- **follow**: afterwards the rest follows slow changes (posture, lighting, the tracker's drift) with a time
  constant of ``follow_s`` seconds, from frames the calibrated model calls neutral and that lie within
  ``follow_rms`` of the rest: an expression never pulls the rest towards itself.
- **second look**: a face that appears with a smile the uncalibrated model misses is taken at rest with
  that smile; when it later settles into a still state that the calibrated model calls an emotion, the
  uncalibrated one none, and relative to which the old rest reads as a smile the uncalibrated model also
  scores happier (``smile_was_the_rest``, asked by edgeemo.face_track), that state becomes the rest.
- **set now**: ``set_now`` makes the last ``bootstrap_s`` seconds the rest at once ("this is rest now").
- **reset**: a new track starts a new estimator (edgeemo.face_track), so a face gone longer than the face
  gap is calibrated afresh.

The same class runs offline on synthetic streams (offline.synth), so the models train on the rest this
estimator finds, errors included, never the true one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np
from numba import boolean, float32, float64, int64, njit

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import face_template

REST_RELATIVE = "rest-relative/v1"  # a bundle's models read rest_relative(face, rest)
ABSOLUTE = "absolute"  # ... or the normalised face itself (every bundle before calibration)
REPRESENTATIONS = (ABSOLUTE, REST_RELATIVE)
# An uncalibrated score at or above its emotion's veto keeps a face from becoming its own rest. 0.5 (the
# models' threshold) for every emotion but disgust: resting London dev faces reach disgust 0.94 under the
# absolute default bundle (10 of 50 above 0.5; the "resting face called disgust" that calibration is for),
# any other emotion at most 0.17 (one happiness 0.96). Disgust's veto lies above what resting faces reach.
VETO = (0.5, 0.98, 0.5, 0.5, 0.5, 0.5)
HISTORY_FRAMES = 128  # frames kept for bootstrap and set_now: a window's span and more at 60 fps


@dataclass(frozen=True)
class RestSettings:
    """The estimator's settings; a calibrated bundle states them (manifest ``rest_estimator``)."""

    bootstrap_s: float = 1.0  # still, expressionless seconds before the rest is first set
    still_rms: float = 0.012  # face heights: the median frame's RMS distance from the median face may be
    # this much (the synthetic tracker's jitter alone gives 0.005-0.008: gross motion only, the veto decides)
    veto: tuple[float, ...] = VETO  # per emotion (EMOTIONS order): an uncalibrated score this high says
    # "an expression, not rest"
    follow_s: float = 30.0  # time constant with which the rest follows slow changes
    follow_rms: float = 0.012  # face heights: frames further from the rest never move it (jitter alone: 0.005-0.008)

    def as_dict(self) -> dict:
        values = asdict(self)
        values["veto"] = dict(zip(EMOTIONS, self.veto))
        return values

    @classmethod
    def from_dict(cls, values: dict, where: str = "rest_estimator") -> "RestSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EdgeemoError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        settings = {}
        for name, value in values.items():
            if name == "veto":
                if not isinstance(value, dict) or sorted(value) != sorted(EMOTIONS):
                    raise EdgeemoError(f"{where}.veto: expected a score for each of {', '.join(EMOTIONS)}")
                settings[name] = tuple(_positive(value[e], f"{where}.veto.{e}") for e in EMOTIONS)
            else:
                settings[name] = _positive(value, f"{where}.{name}")
        return cls(**settings)


def _positive(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise EdgeemoError(f"{where}: expected a positive number, got {value!r}")
    return float(value)


@njit(boolean(float32[:, ::1], float32[:, ::1], float32, float64), cache=True)
def _follow_step(rest, face, rate, limit):
    """rest += rate * (face - rest), in place, if the face's RMS distance from the rest (over its landmarks) is
    at most ``limit``; whether it moved. One compiled pass: as numpy (a difference, an einsum, a scaled add)
    it cost 65 us a frame in serve's pipeline, right after the face mesh, where each call runs from cold caches."""
    total = 0.0
    for i in range(rest.shape[0]):
        for j in range(2):
            d = np.float64(face[i, j] - rest[i, j])
            total += d * d
    if np.sqrt(total / rest.shape[0]) > limit:
        return False
    for i in range(rest.shape[0]):
        for j in range(2):
            rest[i, j] += rate * (face[i, j] - rest[i, j])
    return True


def rest_relative(face: np.ndarray, rest: np.ndarray, canonical: np.ndarray) -> np.ndarray:
    """The face's displacement from its rest, applied to the canonical face (all [..., L, 2])."""
    return (face - rest + canonical).astype(np.float32)


def median_face(faces: np.ndarray) -> np.ndarray:
    """The per-landmark median [L, 2] of faces [n, L, 2]: np.median's numbers (float32)."""
    return _median_and_spread(faces)[0]


def _median_and_spread(faces: np.ndarray) -> tuple[np.ndarray, float]:
    """The median face [L, 2] of faces [n, L, 2] and the median frame's RMS distance from it (face heights)."""
    n, landmarks = faces.shape[:2]
    median = np.empty((landmarks, 2), np.float32)
    flat = np.ascontiguousarray(faces, np.float32).reshape(n, -1)
    spread = _sort_network_median(flat, _merge_sort_network(n), median.reshape(-1), landmarks)
    return median, spread


@lru_cache(maxsize=16)
def _merge_sort_network(n: int) -> np.ndarray:
    """int64 [m, 2]: the comparators (i < j) of Batcher's odd-even merge sort of n items. Built for the next
    power of two; comparators that reach past n are left out (padding with +inf would make them no-ops)."""
    size = 1 << max(n - 1, 0).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, np.int64).reshape(-1, 2)


# fastmath: the RMS sums vectorise (their order is free); landmarks are never NaN, and min, max and halving
# are exact, so the median is np.median's to the bit (a test checks it).
@njit(float64(float32[:, ::1], int64[:, ::1], float32[::1], int64), cache=True, fastmath=True)
def _sort_network_median(frames, pairs, median, landmarks):
    """The per-column median of frames [n, C] into median [C], and the median over frames of each frame's RMS
    distance from it (over C / 2 points). One comparator at a time across all C columns: the compiler
    vectorises each, which sorts a second's 31 frames of 936 columns four times as fast as np.sort's
    column-by-column sort along the frames."""
    n, columns = frames.shape
    work = frames.copy()
    for m in range(pairs.shape[0]):
        low, high = work[pairs[m, 0]], work[pairs[m, 1]]
        for c in range(columns):
            a, b = low[c], high[c]
            low[c], high[c] = min(a, b), max(a, b)
    middle = n // 2
    for c in range(columns):
        median[c] = work[middle, c] if n % 2 else (work[middle - 1, c] + work[middle, c]) / np.float32(2)
    rms = np.empty(n)
    for i in range(n):
        total = 0.0
        for c in range(columns):
            d = np.float64(frames[i, c] - median[c])
            total += d * d
        rms[i] = np.sqrt(total / landmarks)
    rms.sort()
    return rms[middle] if n % 2 else 0.5 * (rms[middle - 1] + rms[middle])


def smile_was_the_rest(rest_against_still: np.ndarray, rest_scores: np.ndarray, still_scores: np.ndarray,
                       calibrated_thresholds: np.ndarray, uncalibrated_thresholds: np.ndarray) -> bool:
    """The second look: whether a face's rest was a smile the uncalibrated models missed, and the still state
    it has settled into since is its rest. ``rest_against_still``: the calibrated models' scores for the rest
    read relative to that state; ``rest_scores``, ``still_scores``: the uncalibrated models' scores for each,
    held still.

    Relative to each other a smile and a rest are ambiguous (the rest read against a smile is an inverse
    smile, which the calibrated models call sadness or disgust, as they call a real one), so the absolute
    models break the tie, compared within the person: they score a missed smile low, but still above the
    same person's rest (all 10 London dev smiles the default bundle misses). Only happiness: a rest read
    against a held surprise or disgust can look like a smile too, but then the uncalibrated models see an
    expression in the new state (no false second look on 479 held synthetic expressions of unseen people)."""
    happy = EMOTIONS.index("happiness")
    return bool(rest_against_still[happy] >= calibrated_thresholds[happy]
                and rest_scores[happy] > still_scores[happy]
                and (still_scores < uncalibrated_thresholds).all())


def canonical_face(landmarks: np.ndarray | None = None) -> np.ndarray:
    """The canonical neutral face [L, 2] at ``landmarks`` (all 468 when None)."""
    template = face_template().template
    return template if landmarks is None else template[np.asarray(landmarks)]


class RestEstimator:
    """The resting face of one tracked face, from its normalised landmarks [L, 2] (all 468, or a subset).

    Not thread-safe: one per face track, on its stream's thread.
    """

    def __init__(self, landmarks: int, settings: RestSettings = RestSettings()) -> None:
        self.settings = settings
        self._veto = np.asarray(settings.veto, np.float32)
        self._history = np.zeros((HISTORY_FRAMES, landmarks, 2), np.float32)
        self._times = np.full(HISTORY_FRAMES, -np.inf)
        self._next = 0  # where the next frame goes in the history ring
        self._first_at: float | None = None
        self._vetoed_at = -np.inf  # the last frame whose window the uncalibrated models vetoed
        self.rest: np.ndarray | None = None  # [L, 2] once established
        self.frames = 0  # frames behind the estimate (the bootstrap's, then every frame that moved it)
        self.established_at: float | None = None
        self.how: str | None = None  # "auto" or "set": how the rest was first set

    @property
    def calibrated(self) -> bool:
        return self.rest is not None

    def observe(self, face: np.ndarray, at: float, scores: np.ndarray | None = None,
                neutral: bool | None = None) -> bool:
        """One frame of the face at time ``at``. ``scores``: the uncalibrated model's six scores for the window
        ending here (None: no window yet), used while bootstrapping; ``neutral``: whether the calibrated model
        called it neutral, used once calibrated. True when this frame established the rest."""
        self._history[self._next] = face
        self._times[self._next] = at
        if self._first_at is None:
            self._first_at = at
        self._next = (self._next + 1) % HISTORY_FRAMES
        if self.rest is None:
            if scores is None:
                return False  # no verdict on these frames yet
            if bool((np.asarray(scores) >= self._veto).any()):
                self._vetoed_at = at  # an expression: its frames, and the window's before them, are not rest
                return False
            still = self.still(at)
            if still is None:
                return False  # not seen for long enough yet, or not still
            self._establish(*still, at, "auto")
            return True
        if neutral:
            self._follow(face, at)
        return False

    def still(self, at: float) -> tuple[np.ndarray, int] | None:
        """The median face [L, 2] of the last ``bootstrap_s`` seconds and how many frames it came from, if the
        face was still over them (the median frame within ``still_rms`` of the median face: an onset, talking
        or turning is not, a blink is outvoted); None otherwise, or before a full stretch since the last veto."""
        recent = self._recent(at)
        if recent is None:
            return None
        median, spread = _median_and_spread(recent)
        if spread > self.settings.still_rms:
            return None
        return median, len(recent)

    def replace(self, rest: np.ndarray, frames: int, at: float) -> None:
        """A new rest found by the estimator's rules (the second look): ``how`` stays "auto"."""
        self._establish(rest, frames, at, "auto")

    def set_now(self, at: float) -> bool:
        """Take the last ``bootstrap_s`` seconds as the rest, whatever they show; False if there are no frames."""
        recent = self._recent(at, need_full=False)
        if recent is None:
            return False
        self._establish(median_face(recent), len(recent), at, "set")
        return True

    def recent_frames(self, since: float) -> tuple[np.ndarray, np.ndarray]:
        """The frames [n, L, 2] kept from time ``since`` on and their times [n], oldest first (the runtime
        encodes them afresh, relative to the new rest, so that the calibrated models have a full window)."""
        order = np.argsort(self._times)
        order = order[self._times[order] >= since - 1e-9]
        return self._history[order], self._times[order]

    def state(self, at: float) -> dict:
        """What a prediction says about this face's calibration (docs/contracts/messages.md)."""
        if self.rest is None:
            return {"calibrated": False, "frames": 0, "age_s": 0.0}
        return {"calibrated": True, "frames": self.frames, "age_s": max(at - self.established_at, 0.0),
                "how": self.how}

    def _recent(self, at: float, need_full: bool = True) -> np.ndarray | None:
        """The frames of the last ``bootstrap_s`` seconds; None when there are none, or (``need_full``) when
        the face has not been seen that long yet, or a window was vetoed since: the verdict lags the frames
        by up to a window, so the rest comes from frames after the last vetoed window only."""
        since = at - self.settings.bootstrap_s
        if need_full and (self._first_at is None or max(self._first_at, self._vetoed_at) > since + 1e-9):
            return None
        chosen = self._times > since - 1e-9
        return self._history[chosen] if chosen.any() else None

    def _establish(self, median: np.ndarray, frames: int, at: float, how: str) -> None:
        self.rest = median.astype(np.float32)
        self.frames, self.established_at, self.how = frames, at, how

    def _follow(self, face: np.ndarray, at: float) -> None:
        step = self._times[(self._next - 2) % HISTORY_FRAMES]  # the previous frame's time
        dt = at - step if np.isfinite(step) else 0.0
        if not 0.0 < dt < 1.0:
            return
        if _follow_step(self.rest, np.ascontiguousarray(face, np.float32), np.float32(dt / self.settings.follow_s),
                        self.settings.follow_rms):
            self.frames += 1
