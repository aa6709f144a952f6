"""The streaming head's arithmetic for one window, compiled: six LSTMs and their dense layers in one call.

Inside serve's pipeline, right after MediaPipe's face mesh has filled the caches with its own code and data,
an ONNX Runtime session call for the head (41 nodes, six LSTM kernels, the allocation plan) took 210-315 us a
prediction against 89 us warm; this kernel takes 75-79 us there and 45 us warm (2026-12-06,
docs/streaming.md#the-head-compiled). It reads the head graph's own initializers (``HeadKernel.load``), and
``StreamingClassifier`` uses it only where it gives ONNX Runtime's scores on probe windows and is the faster
of the two, timed when it loads; batches of windows (``StreamingClassifier.classify_windows``) run in ONNX
Runtime.

The LSTM gates take tanh as ONNX Runtime's MLAS computes it, the rational approximation clamped to [-9, 9]
(also Eigen's and XLA's; at most 3e-7 from tanh), and the logistic function from it: (1 + tanh(x/2)) / 2.
Numba's ``error_model="numpy"`` lets the division vectorise (the default checks it for zero, one element at a
time: 36 against 6 us for a window's activations); the comparisons leave NaN through, as ONNX Runtime does, so
a broken frame gives NaN scores rather than plausible ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import float32, int64, njit, void

_FLAGS = {"contract"}  # fused multiply-adds; no fast-math assumption that NaNs are absent


@njit(fastmath=_FLAGS, error_model="numpy", inline="always")
def _tanh(x):
    x = np.float32(-9.0) if x < np.float32(-9.0) else x
    x = np.float32(9.0) if x > np.float32(9.0) else x
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return p * x / q


@njit(fastmath=_FLAGS, error_model="numpy", inline="always")
def _sigmoid(x):
    return np.float32(0.5) * _tanh(np.float32(0.5) * x) + np.float32(0.5)


# nogil: serve's stream threads run the kernels side by side (two threads, 3000 frames' encoder and head
# calls each: 0.30 s, against 0.69 s holding the interpreter lock).
@njit(void(float32[:, ::1], float32[::1], int64[:, ::1], float32[:, ::1], float32[::1], float32[:, ::1],
           float32[::1], float32[::1]), cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def _classify(window, recurrent, models, fc1, fc1_b, fc2, fc2_b, out):
    """out = P(emotion) of each model for one window of encodings [P, E], as the head graph computes it.
    ``models`` [M, 6]: first encoding column, units Q, offset of R^T [Q, 4Q] in ``recurrent``, first hidden
    column, and the fc1 columns [lo, hi) its hidden state reaches (the block-diagonal layer's nonzero block)."""
    hidden = np.zeros(fc1.shape[0], np.float32)
    units_max = models[:, 1].max()
    gates = np.empty(4 * units_max, np.float32)
    cell = np.empty(units_max, np.float32)
    for m in range(models.shape[0]):
        first, q, offset, h0 = models[m, 0], models[m, 1], models[m, 2], models[m, 3]
        r = recurrent[offset:offset + q * 4 * q].reshape((q, 4 * q))
        h = hidden[h0:h0 + q]
        g = gates[:4 * q]  # ONNX's gate order: input, output, forget, cell
        c = cell[:q]
        c[:] = 0.0
        for t in range(window.shape[0]):
            g[:] = window[t, first:first + 4 * q]  # W x + both biases: the encoder's work
            for k in range(q):
                hk, row = h[k], r[k]
                for j in range(4 * q):
                    g[j] += row[j] * hk
            for j in range(3 * q):
                g[j] = _sigmoid(g[j])
            for j in range(3 * q, 4 * q):
                g[j] = _tanh(g[j])
            for j in range(q):
                c[j] = g[2 * q + j] * c[j] + g[j] * g[3 * q + j]
            for j in range(q):
                h[j] = g[q + j] * _tanh(c[j])
    dense = fc1_b.copy()
    for m in range(models.shape[0]):
        lo, hi = models[m, 4], models[m, 5]
        for k in range(models[m, 3], models[m, 3] + models[m, 1]):
            hk, row = hidden[k], fc1[k]
            for j in range(lo, hi):
                dense[j] += row[j] * hk
    for j in range(dense.shape[0]):
        dense[j] = np.float32(0.0) if dense[j] < np.float32(0.0) else dense[j]  # ReLU, NaN kept
    logits = fc2_b.copy()
    for k in range(dense.shape[0]):
        zk, row = dense[k], fc2[k]
        for j in range(logits.shape[0]):
            logits[j] += row[j] * zk
    for e in range(out.shape[0]):  # softmax over (not e, e), its second half
        out[e] = np.float32(1.0) / (np.float32(1.0) + np.exp(logits[2 * e] - logits[2 * e + 1]))


class HeadKernel:
    """One window of encodings [P, E] -> P(emotion) [M], as the head graph computes it. Thread-safe (no state)."""

    def __init__(self, recurrent: np.ndarray, models: np.ndarray, fc1: np.ndarray, fc1_b: np.ndarray,
                 fc2: np.ndarray, fc2_b: np.ndarray) -> None:
        self._arrays = (recurrent, models, fc1, fc1_b, fc2, fc2_b)
        self.emotions = len(models)

    def __call__(self, window: np.ndarray) -> np.ndarray:
        out = np.empty(self.emotions, np.float32)
        _classify(np.ascontiguousarray(window, np.float32), *self._arrays, out)
        return out

    @classmethod
    def load(cls, path: Path) -> HeadKernel | None:
        """The kernel's arrays from a head graph written by ``edgeemo.streaming_graphs.head_bytes``; None for any
        other graph, or without the ``onnx`` package (in the cpu and gpu extras) to read it."""
        try:
            import onnx
            from onnx import helper, numpy_helper
        except ImportError:
            return None

        graph = onnx.load(str(path)).graph
        weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
        lstms = [node for node in graph.node if node.op_type == "LSTM"]
        concat = [node for node in graph.node if node.op_type == "Concat"]
        try:
            # The hidden states in the order the Concat joins them: the order of fc1's rows.
            by_output = {node.output[1]: node for node in lstms}
            ordered = [by_output[name] for name in concat[0].input]
            rows, models, hidden = [], [], 0
            for node in ordered:
                i = int(node.input[0][len("x_"):])
                units = int(next(helper.get_attribute_value(a) for a in node.attribute if a.name == "hidden_size"))
                r = weights[f"r_{i}"][0]  # [4Q, Q]
                first, end = int(weights[f"start_{i}"][0]), int(weights[f"end_{i}"][0])
                if len(node.input) > 3 or r.shape != (4 * units, units) or end - first != 4 * units:
                    return None  # a bias or a peephole the kernel does not add, or a shape it does not read
                models.append([first, units, sum(part.size for part in rows), hidden, 0, 0])
                rows.append(np.ascontiguousarray(r.T, np.float32).reshape(-1))
                hidden += units
            fc1, fc1_b = weights["fc1"].astype(np.float32), weights["fc1_b"].astype(np.float32)
            fc2, fc2_b = weights["fc2"].astype(np.float32), weights["fc2_b"].astype(np.float32)
        except (KeyError, ValueError, IndexError, StopIteration):
            return None
        if not models or len(concat) != 1 or fc1.shape[0] != hidden or fc2.shape != (fc1.shape[1], 2 * len(models)):
            return None
        for model in models:  # the columns of fc1 this model's hidden state reaches
            reached = np.flatnonzero(np.any(fc1[model[3]:model[3] + model[1]] != 0.0, axis=0))
            model[4:] = (reached[0], reached[-1] + 1) if len(reached) else (0, 0)
        return cls(np.concatenate(rows), np.asarray(models, np.int64), np.ascontiguousarray(fc1), fc1_b,
                   np.ascontiguousarray(fc2), fc2_b)
