"""Live explanations: exact Shapley values of one emotion's score over face regions, in ONNX Runtime.

The streaming encoder (edgeemo.streaming_graphs) is standardise -> a 2x1 convolution per landmark -> ReLU ->
batch norm -> LSTM input projection: a frame's encoding is c + sum over landmarks l of g_l(x_l), additive
over landmarks. So a window whose regions in S come from the face x and the rest from the baseline b encodes
exactly as E(b) + sum_{r in S} (E(x_r, b_rest) - E(b)), frame by frame: R + 1 encoder rows per frame give
the encodings of all 2^R coalitions. One batched head call (the explained emotion's LSTM and dense layers
only) scores them, and the Shapley values follow as a fixed [R, 2^R] matrix times those scores. Exact Shapley
values are complete by construction (they add up to F(x) - F(b)); what is left, the published ``residual``,
is float error plus the encoder's additivity error, measured against the score the stream published.

Landmark-level values (``landmarks=True``) split each region's value over its landmarks in proportion to how
far each moved from the baseline (summed over the window): an approximation, documented as such.

Baseline: the face's resting face when known (the calibration issue's per-person rest: pass ``rest``), else
the canonical neutral face (edgeemo/resources/face_template.npz, already in the normalised frame) held still
for all P frames. See docs/explanations.md.
"""

from __future__ import annotations

from math import factorial

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.face import face_template
from edgeemo.regions import union_regions
from edgeemo.streaming import StreamingClassifier

CANONICAL_BASELINE = "canonical_rest"
PERSONAL_BASELINE = "personal_rest"
TOP_LANDMARKS = 10  # landmark-level values sent per explanation (the largest by magnitude)


def coalitions(regions: int) -> np.ndarray:
    """float32 [2^R, R]: row s has a 1 where region r is in coalition s (bit r of s)."""
    s = np.arange(2 ** regions)[:, None]
    return ((s >> np.arange(regions)[None]) & 1).astype(np.float32)


def shapley_matrix(members: np.ndarray) -> np.ndarray:
    """float64 [R, 2^R]: phi = matrix @ v gives exact Shapley values from the value v of every coalition."""
    count, regions = members.shape
    size = members.sum(axis=1).astype(int)
    matrix = np.zeros((regions, count))
    fact = [factorial(i) for i in range(regions + 1)]
    for r in range(regions):
        inside = members[:, r] > 0
        # S containing r: + |S|-1 ! (R-|S|)! / R!  (the marginal v(S) - v(S \ r) credited to r); S without r: -.
        matrix[r, inside] = [fact[k - 1] * fact[regions - k] / fact[regions] for k in size[inside]]
        matrix[r, ~inside] = [-fact[k] * fact[regions - k - 1] / fact[regions] for k in size[~inside]]
    return matrix


def canonical_baseline(union: np.ndarray, frames: int) -> np.ndarray:
    """float32 [P, U, 2]: the canonical neutral face's union landmarks, still for a window."""
    return np.repeat(face_template().template[np.asarray(union)][None], frames, axis=0).astype(np.float32)


class _EmotionPart:
    """One emotion's own encoder and head (its model alone: a sixth of the fused pair's work) and the regions
    its K landmarks reach. A region the model does not read has Shapley value 0 exactly (the dummy axiom), so
    it is left out of the coalitions: 2^R' windows with R' <= R."""

    def __init__(self, classifier: StreamingClassifier, emotion: int, threads: int) -> None:
        import onnxruntime

        from edgeemo.streaming_graphs import encoder_bytes, head_bytes, read_onnx_weights

        model = classifier.bundle.models[emotion]
        weights = read_onnx_weights(model.path, model.landmarks)
        union = classifier.union
        names, _ = union_regions(model.landmarks)
        self.names = names
        # positions in the union of all the region's landmarks (those this model does not read change nothing)
        all_names, all_members = union_regions(union)
        self.members = [all_members[all_names.index(name)] for name in names]
        self.coalitions = coalitions(len(names))
        self.shapley = shapley_matrix(self.coalitions)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = lambda graph: onnxruntime.InferenceSession(graph, sess_options=options,
                                                            providers=["CPUExecutionProvider"])
        self.encoder = session(encoder_bytes([weights], union))
        self.head = session(head_bytes([weights], classifier.bundle.frames))
        self.encoder_input = self.encoder.get_inputs()[0].name
        self.head_input = self.head.get_inputs()[0].name


class Explainer:
    """Region Shapley values for a StreamingClassifier's windows. Not thread-safe (one per stream or face)."""

    def __init__(self, classifier: StreamingClassifier, rest: np.ndarray | None = None, threads: int = 1,
                 parts: dict | None = None) -> None:
        """``parts``: a cache of the emotions' graphs to share with the other faces of the same classifier (each
        face keeps its own baseline); None: this explainer's own."""
        self.classifier = classifier
        self.frames = classifier.bundle.frames
        self.names, _ = union_regions(classifier.union)
        self._threads = threads
        self._parts: dict[int, _EmotionPart] = {} if parts is None else parts
        self.set_rest(rest)

    def set_rest(self, rest: np.ndarray | None) -> None:
        """The baseline: a resting face [U, 2] or window [P, U, 2] (normalised union landmarks), or None for
        the canonical neutral face. The calibration issue's per-person rest goes here."""
        if rest is None:
            self.baseline, self.baseline_name = canonical_baseline(self.classifier.union, self.frames), CANONICAL_BASELINE
        else:
            rest = np.asarray(rest, np.float32)
            self.baseline = np.broadcast_to(rest, (self.frames, *rest.shape[-2:])).copy()
            self.baseline_name = PERSONAL_BASELINE

    def part(self, emotion: int) -> _EmotionPart:
        """The emotion's graphs, built on first use (tens of milliseconds) from the bundle's ONNX weights."""
        if emotion not in self._parts:
            self._parts[emotion] = _EmotionPart(self.classifier, emotion, self._threads)
        return self._parts[emotion]

    def region_values(self, faces: np.ndarray, emotion: int) -> tuple[dict[str, float], float, float]:
        """(Shapley value of every region, F(x), F(b)) of one emotion for a window of faces [P, U, 2]."""
        part = self.part(emotion)
        regions = len(part.names)
        rows = np.repeat(self.baseline[:, None], regions + 1, axis=1)  # [P, R'+1, U, 2]
        for r, where in enumerate(part.members):  # row r + 1: region r from the face, the rest at rest
            rows[:, r + 1, where] = faces[:, where]
        encodings = part.encoder.run(None, {part.encoder_input: rows.reshape(-1, *rows.shape[2:])})[0]
        encodings = encodings.reshape(self.frames, regions + 1, -1)
        rest, deltas = encodings[:, 0], encodings[:, 1:] - encodings[:, :1]  # [P, E], [P, R', E]
        # Every coalition's window: the rest plus the deltas of its regions (the encoder is additive). Built by
        # doubling (coalitions with bit r are those without it plus region r's delta): R elementwise adds, no
        # matrix product, whose BLAS threads would take cores that serve --threads 1 leaves to others.
        windows = np.empty((2 ** regions, *rest.shape), np.float32)
        windows[0] = rest
        for r in range(regions):
            np.add(windows[:2 ** r], deltas[:, r], out=windows[2 ** r:2 ** (r + 1)])
        values = part.head.run(None, {part.head_input: windows})[0][:, 0].astype(np.float64)
        phi = part.shapley @ values
        shares = dict.fromkeys(self.names, 0.0)
        shares.update({name: float(v) for name, v in zip(part.names, phi)})
        return shares, float(values[-1]), float(values[0])

    def explain(self, faces: np.ndarray, scores: np.ndarray, emotion: str | None = None,
                landmarks: bool = False) -> dict:
        """The ``explanation`` payload for a window of faces [P, U, 2] whose published scores are ``scores``
        [6]: the top emotion's unless ``emotion`` is named."""
        index = int(np.argmax(scores)) if emotion is None else EMOTIONS.index(emotion)
        regions, _, baseline_score = self.region_values(faces, index)
        score = float(scores[index])
        explanation = {
            "emotion": EMOTIONS[index], "baseline": self.baseline_name, "score": score,
            "baseline_score": baseline_score,
            # Against the published score: float error and the encoder's additivity error together.
            "residual": score - baseline_score - sum(regions.values()),
            "regions": regions,
        }
        if landmarks:
            explanation["landmarks"] = self._landmark_values(faces, index, regions)
        return explanation

    def _landmark_values(self, faces: np.ndarray, emotion: int, regions: dict[str, float]) -> dict[str, float]:
        """The TOP_LANDMARKS largest landmark shares (mesh index -> value): each region's value split over the
        model's landmarks in it by how far each moved from the baseline over the window (an approximation:
        the movement, not the model's sensitivity to it)."""
        part = self.part(emotion)
        reads = np.isin(self.classifier.union, self.classifier.bundle.models[emotion].landmarks)
        moved = np.linalg.norm(faces - self.baseline, axis=2).sum(axis=0) * reads  # [U]
        values = np.zeros(len(moved))
        for name, where in zip(part.names, part.members):
            total = moved[where].sum()
            if total > 0:
                values[where] = regions[name] * moved[where] / total
        top = np.argsort(-np.abs(values))[:TOP_LANDMARKS]
        return {str(int(self.classifier.union[i])): float(values[i]) for i in top if values[i] != 0.0}
