"""The streaming runtime: each frame encoded once, windows picked by time, one head call for six emotions.

``StreamingClassifier`` holds the bundle's fused pair (edgeemo.streaming_graphs) in two ONNX Runtime
sessions, and runs single frames and windows through the graphs' compiled kernels where they give ONNX
Runtime's results (edgeemo.sparse_encoder, edgeemo.compiled_head); ``TimedWindow`` is one stream's (or face
track's) buffer of encodings and capture times. Per frame:
``window.append(classifier.encode(face), at)``; then ``window.take()`` gives the P encodings nearest the
times the trained window expects, or None with the reason in ``window.refused`` (still filling, or a frame
missing by more than the tolerance), and ``classifier.classify(encodings)`` the six scores.

``make_classifier`` chooses: the pair when the bundle has one, else the per-emotion models (old bundles).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from edgeemo.bundle import ModelBundle
from edgeemo.classifier import EmotionClassifier, fuse
from edgeemo.compiled_head import HeadKernel
from edgeemo.errors import EdgeemoError
from edgeemo.face import face_template
from edgeemo.sparse_encoder import SparseEncoder
from edgeemo.streaming_graphs import ENCODER_INPUT, HEAD_INPUT
from edgeemo.timebuffer import TimedBuffer

# A window frame may sit at most half a window step from the time it stands for: then every picked frame is
# nearer its own target than its neighbours', so the window keeps its order and its span within one step.
TOLERANCE_STEPS = 0.5
MAX_FPS = 240.0  # the buffer keeps one window's worth of frames up to this camera rate
# The compiled encoder must give ONNX Runtime's encodings to this share of their largest magnitude (it sums in
# another order: 1e-6 on real faces); else the frame encoder stays ONNX Runtime's.
SPARSE_TOLERANCE = 1e-5
# The compiled head must give ONNX Runtime's scores (probabilities) to this (2e-7 on real faces); else ONNX
# Runtime's head classifies.
HEAD_TOLERANCE = 1e-5

log = logging.getLogger(__name__)

Kernel = SparseEncoder | HeadKernel
# Each graph's checked kernel (or None) by role, file, content and session options: serve's streams each load a
# classifier, and share one kernel (it holds no state) instead of each checking, timing and holding its own.
_KERNELS: dict[tuple, Kernel | None] = {}


class StreamingClassifier:
    """The fused pair of a bundle. Not thread-safe: one per thread, as EmotionClassifier."""

    uncalibrated = None  # a calibrated bundle's uncalibrated classifier (edgeemo.streaming.make_classifier)

    def __init__(self, bundle: ModelBundle, providers: tuple[str, ...] = ("CPUExecutionProvider",), threads: int = 1):
        import onnxruntime

        if bundle.streaming is None:
            raise ValueError(f"bundle {bundle.bundle_id} has no streaming pair (use EmotionClassifier)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.bundle = bundle
        self.union = bundle.landmarks_union
        self.width = bundle.streaming.encoding_width
        self._encoder = onnxruntime.InferenceSession(str(bundle.streaming.encoder), sess_options=options,
                                                     providers=list(providers))
        self._head = onnxruntime.InferenceSession(str(bundle.streaming.head), sess_options=options,
                                                  providers=list(providers))
        self._frame = np.zeros((1, len(self.union), 2), np.float32)
        self.thresholds = bundle.thresholds
        # One frame, one window at a time: the compiled kernels where they match and are the faster here.
        self.compiled_encoder = self._shared_kernel("encoder", self._checked_encoder_kernel, providers, threads)
        self.compiled_head = self._shared_kernel("head", self._checked_head_kernel, providers, threads)

    def encode(self, face: np.ndarray) -> np.ndarray:
        """One frame's encoding float32 [E] from its normalised union landmarks [U, 2]."""
        self._frame[0] = face
        if self.compiled_encoder is not None:
            return self.compiled_encoder(self._frame)
        return self._onnx_encode(self._frame)

    def _onnx_encode(self, frame: np.ndarray) -> np.ndarray:
        """One frame [1, U, 2]'s encoding [E] by ONNX Runtime's session."""
        return self._encoder.run(None, {ENCODER_INPUT: frame})[0][0]

    @property
    def frame_encoder(self) -> str:
        """What encodes single frames: "compiled" or "onnxruntime"."""
        return "onnxruntime" if self.compiled_encoder is None else "compiled"

    @property
    def window_head(self) -> str:
        """What classifies single windows: "compiled" or "onnxruntime"."""
        return "onnxruntime" if self.compiled_head is None else "compiled"

    def __str__(self) -> str:
        return f"streaming pair (frames encoded by {self.frame_encoder}, windows classified by {self.window_head})"

    def _shared_kernel(self, role: str, checked: Callable[[], Kernel | None], providers: tuple[str, ...],
                       threads: int) -> Kernel | None:
        """The kernel ``checked()`` accepts for the pair's ``role`` graph, checked once per graph file and options."""
        key = (role, str(getattr(self.bundle.streaming, role)), self.bundle.manifest["streaming"][role]["sha256"],
               tuple(providers), threads)
        if key not in _KERNELS:
            _KERNELS[key] = checked()
        return _KERNELS[key]

    def _checked_encoder_kernel(self) -> SparseEncoder | None:
        """The compiled encoder of this bundle's graph (edgeemo.sparse_encoder) if ``_accepted``. Which is faster
        depends on the weights' size: skipping rows pays while they stay in the caches between frames (the
        default bundle's 2.4 MB: 46 against 85 us), and can cost where they come from main memory (the paper's
        sizes from K = 234 in edgeemo bench's record of 2026-12-06 14:57)."""
        faces = self._probe_faces(1)[:, 0]
        expected = self.encode_frames(faces)
        return self._accepted("encoder", SparseEncoder.load(self.bundle.streaming.encoder), faces, expected,
                              SPARSE_TOLERANCE * max(1.0, float(np.abs(expected).max())),
                              lambda face: self._onnx_encode(face[None]))

    def _checked_head_kernel(self) -> HeadKernel | None:
        """The compiled head of this bundle's graph (edgeemo.compiled_head) if ``_accepted``."""
        windows = self._probe_faces(self.bundle.frames)
        encodings = self.encode_frames(windows.reshape(-1, *windows.shape[2:])).reshape(len(windows), -1, self.width)
        return self._accepted("head", HeadKernel.load(self.bundle.streaming.head), encodings,
                              self.classify_windows(encodings), HEAD_TOLERANCE, self._onnx_classify)

    def _accepted(self, role: str, kernel: Kernel | None, inputs: np.ndarray, expected: np.ndarray, tolerance: float,
                  onnx_call: Callable[[np.ndarray], object]) -> Kernel | None:
        """``kernel`` if it gives ONNX Runtime's results (``expected``) for probe ``inputs`` within ``tolerance``,
        and runs one of them faster than ``onnx_call`` does here (15 alternated turns); else None, with a log
        line where it cannot read the graph or differs."""
        fallback = {"encoder": "frames are encoded", "head": "windows are classified"}[role] + " by ONNX Runtime"
        if kernel is None:
            log.warning("%s: the streaming %s's graph is not one its compiled kernel reads; %s", self.bundle.bundle_id,
                        role, fallback)
            return None
        worst = max(float(np.abs(kernel(one) - want).max()) for one, want in zip(inputs, expected))
        if not worst <= tolerance:
            log.warning("%s: the compiled %s differs from ONNX Runtime's by %.2g; %s", self.bundle.bundle_id, role,
                        worst, fallback)
            return None
        probe = inputs[1]  # the middle jitter: for the encoder, a face, with the features it zeroes
        onnx_s, compiled_s = _faster([lambda: onnx_call(probe), lambda: kernel(probe)])
        log.debug("%s: the %s %.0f us in ONNX Runtime, %.0f us compiled", self.bundle.bundle_id, role, onnx_s * 1e6,
                  compiled_s * 1e6)
        return kernel if compiled_s < onnx_s else None

    def _probe_faces(self, frames: int) -> np.ndarray:
        """Three sequences [3, frames, U, 2] of the canonical face moved about by a face mesh's jitter and more."""
        rng = np.random.default_rng(0)
        canonical = face_template().template[self.union].astype(np.float32)
        scale = np.array([0.002, 0.01, 0.03])[:, None, None, None]
        return canonical + rng.normal(0.0, scale, (3, frames, *canonical.shape)).astype(np.float32)

    def encode_frames(self, faces: np.ndarray) -> np.ndarray:
        """Encodings [N, E] of N frames [N, U, 2] in one call (tests, benchmarks, offline use)."""
        return self._encoder.run(None, {ENCODER_INPUT: np.ascontiguousarray(faces, np.float32)})[0]

    def classify_windows(self, encodings: np.ndarray) -> np.ndarray:
        """Scores [B, 6] of B windows of encodings [B, P, E] in one ONNX Runtime call (tests, the kernel's check)."""
        return self._head.run(None, {HEAD_INPUT: np.ascontiguousarray(encodings, np.float32)})[0]

    def classify(self, encodings: np.ndarray) -> np.ndarray:
        """Scores [6] (probability of each emotion) for one window of encodings [P, E]."""
        if self.compiled_head is not None:
            return self.compiled_head(encodings)
        return self._onnx_classify(encodings)

    def _onnx_classify(self, encodings: np.ndarray) -> np.ndarray:
        """Scores [6] of one window of encodings [P, E] by ONNX Runtime's session."""
        return self._head.run(None, {HEAD_INPUT: encodings[None]})[0][0]

    def classify_window(self, window: np.ndarray) -> np.ndarray:
        """Scores [6] for a window of landmarks [P, 2, U], as EmotionClassifier.classify takes (parity, bench)."""
        return self.classify(self.encode_frames(window.transpose(0, 2, 1)))

    def label(self, scores: np.ndarray) -> str:
        return fuse(scores, self.thresholds)


class TimedWindow:
    """One stream's encodings and capture times; ``take`` picks the window the models were trained on."""

    def __init__(self, bundle: ModelBundle, width: int, *, max_fps: float = MAX_FPS,
                 tolerance_steps: float = TOLERANCE_STEPS) -> None:
        self.frames, self.step_s, self.window_s = bundle.frames, bundle.window_step_s, bundle.window_s
        self.tolerance_s = tolerance_steps * self.step_s
        self.buffer = TimedBuffer.for_window(self.window_s + self.tolerance_s, width, max_fps)
        self.encodings = np.zeros((self.frames, width), np.float32)
        self.picked = np.zeros(self.frames, np.float64)  # the capture times of the last window taken
        self.error_s = 0.0  # the worst |picked - target| of the last window looked at
        self.refused: str | None = None  # why the last take() gave None

    def append(self, encoding: np.ndarray, at: float) -> None:
        if not self.buffer.push(encoding, at):  # the clock went back (a source reopened): start a new window
            self.buffer.clear()
            self.buffer.append(encoding, at)

    def clear(self) -> None:
        self.buffer.clear()

    def take(self) -> np.ndarray | None:
        """The encodings [P, E] of the window ending at the newest frame (a reused array), or None."""
        # Filling until the history reaches back to the first window time (give or take half the tolerance,
        # a camera's jitter): a first window stretched by a missing oldest frame is not taken.
        if not self.buffer.covers(self.window_s, self.tolerance_s / 2):
            full = len(self.buffer) == self.buffer.capacity
            self.refused = "buffer full before a window's span: frames come faster than it holds" if full else "filling"
            return None
        self.error_s = self.buffer.window(self.step_s, self.encodings, self.picked)
        if self.error_s > self.tolerance_s:
            self.refused = (f"no frame within {self.tolerance_s * 1000:.0f} ms of a window time (worst "
                            f"{self.error_s * 1000:.0f} ms): frames dropped or the stream stalled")
            return None
        self.refused = None
        return self.encodings

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last frame of the last window taken."""
        return float(self.picked[-1] - self.picked[0])


def _faster(calls: list, rounds: int = 15) -> list[float]:
    """Each call's median seconds over ``rounds`` turns, the calls alternated so that they share the moment."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds + 1):  # the first turn warms up and is not counted
        for call, spent in zip(calls, times):
            started = time.perf_counter()
            call()
            spent.append(time.perf_counter() - started)
    return [float(np.median(spent[1:])) for spent in times]


def make_classifier(bundle: ModelBundle, providers: tuple[str, ...] = ("CPUExecutionProvider",), threads: int = 1,
                    *, streaming: bool | None = None) -> StreamingClassifier | EmotionClassifier:
    """The bundle's fused pair if it has one (``streaming`` None or True), else its per-emotion models.

    A calibrated bundle's classifier carries its uncalibrated bundle's as ``uncalibrated`` (served while a
    face's rest is unknown, edgeemo.face_track); otherwise ``uncalibrated`` is None."""
    if streaming is None:
        streaming = bundle.streaming is not None
    if bundle.calibrated and not streaming:
        raise EdgeemoError(f"{bundle.path}: a calibrated bundle is served by its fused streaming pair only "
                           "(it has none, or the per-emotion models were asked for)")
    classifier = StreamingClassifier(bundle, providers, threads) if streaming else EmotionClassifier(
        bundle, providers, threads)
    classifier.uncalibrated = (make_classifier(bundle.uncalibrated, providers, threads) if bundle.calibrated
                               else None)
    return classifier
