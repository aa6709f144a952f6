"""The streaming encoder's arithmetic for one frame, compiled, reading only the projection rows the frame uses.

At batch 1 the encoder (``edgeemo.streaming_graphs.encoder_bytes``) is bound by reading its projection
weights: 2.4 MB in the default bundle, more than a core's L2 cache, read afresh every frame. The ReLU before
the projection zeroes 39-55 % of a real face's features, and their rows add nothing; ONNX Runtime's MatMul
reads them all, this kernel skips them (no ONNX Runtime option or operator skips the rows of zero inputs).
Per frame in serve's pipeline, the same minutes alternated: 336 -> 245, 290 -> 242, 409 -> 292 and 320 -> 251
us (docs/streaming.md); with the rows requested ahead of use (``PREFETCH_ROWS``), 143 -> 97, 176 -> 112 and
99 -> 76 us more. Where the weights are many megabytes (the paper's sizes from K = 234, edgeemo bench of
2026-12-06 14:57), ONNX Runtime's dense read is the faster even so, and keeps encoding.

The encoder graph stays the contract: ``SparseEncoder.load`` reads the graph's own initializers, and
``StreamingClassifier`` uses the kernel only where it reproduces ONNX Runtime's encodings of probe faces and
is the faster of the two, timed when it loads; batches of frames (tests, benchmarks, explanations) still run
in ONNX Runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import float32, int64, njit, types, void
from numba.core import cgutils
from numba.extending import intrinsic

# Projection rows requested from memory before they are read. Inside serve's pipeline the rows come from main
# memory (the face mesh has just evicted them) and, gapped, defeat the hardware prefetcher: one row's latency
# after another. Asking ahead overlaps them (2026-12-06, same minutes: 143 -> 97 us a frame there; 2, 6, 12 or
# 24 rows ahead did alike on faces read from a flushed cache).
PREFETCH_ROWS = 6
_LINE = 16  # float32 values per 64-byte cache line


@intrinsic
def _prefetch(typingctx, array, index):
    """Start loading the cache line of ``array[index]`` (LLVM's prefetch: x86's prefetcht0, ARM's PRFM); numba
    has no call of its own for it."""
    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        pointer = cgutils.get_item_pointer(context, builder, array_type,
                                           context.make_array(array_type)(context, builder, args[0]), [args[1]],
                                           wraparound=False)
        byte_pointer, int32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch", [byte_pointer], ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]))
        # A read, to be kept in every cache level, of data.
        builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@njit(inline="always")
def _prefetch_row(row):
    for at in range(0, len(row), _LINE):
        _prefetch(row, at)


# nogil: serve's stream threads run the kernels side by side (two threads, 3000 frames' encoder and head
# calls each: 0.30 s, against 0.69 s holding the interpreter lock).
@njit(void(float32[::1], int64[:, ::1], float32[:, :, ::1], float32[:, ::1], float32[:, :, ::1], float32[:, ::1],
           int64[:, ::1], float32[::1]), cache=True, nogil=True)
def _encode(flat, index, conv_w, conv_b, proj, proj_b, models, out):
    """out = each model's gate pre-activations for one frame ``flat`` [U * 2], in the graph's order of sums:
    patch products, then the convolution bias, ReLU; projection products, then the projection bias.
    ``models`` [M, 6]: first position, positions, patch size, filters, first output column, gates."""
    # First the features the ReLU keeps (and the projection rows they need), then those rows, each requested
    # PREFETCH_ROWS ahead of its use.
    width = proj.shape[1]
    values = np.empty(proj.shape[0] * width, np.float32)
    rows = np.empty(proj.shape[0] * width, np.int32)  # position * width + filter
    ends = np.empty(models.shape[0], np.int64)
    kept = 0
    for m in range(models.shape[0]):
        first, positions, patch, filters = models[m, 0], models[m, 1], models[m, 2], models[m, 3]
        for p in range(first, first + positions):
            for f in range(filters):
                v = np.float32(0.0)
                for k in range(patch):
                    v += flat[index[p, k]] * conv_w[p, k, f]
                v += conv_b[p, f]
                if not v <= 0.0:  # a ReLU zero adds nothing; a NaN is carried on, as ONNX Runtime does
                    values[kept], rows[kept] = v, p * width + f
                    kept += 1
        ends[m] = kept
    projection = proj.reshape((proj.shape[0] * width, proj.shape[2]))
    for i in range(min(PREFETCH_ROWS, kept)):
        _prefetch_row(projection[rows[i]])
    start = 0
    for m in range(models.shape[0]):
        gates = out[models[m, 4]:models[m, 4] + models[m, 5]]  # slices: the compiler vectorises their loops
        gates[:] = 0.0
        for i in range(start, ends[m]):
            if i + PREFETCH_ROWS < kept:
                _prefetch_row(projection[rows[i + PREFETCH_ROWS]])
            v, row = values[i], projection[rows[i]]
            for j in range(len(gates)):
                gates[j] += v * row[j]
        for j in range(len(gates)):
            gates[j] += proj_b[m, j]
        start = ends[m]


class SparseEncoder:
    """One frame [U, 2] -> its encoding [E], as the encoder graph computes it. Thread-safe (no state)."""

    def __init__(self, index: np.ndarray, conv_w: np.ndarray, conv_b: np.ndarray, proj: np.ndarray,
                 proj_b: np.ndarray, models: np.ndarray) -> None:
        self._arrays = (index, conv_w, conv_b, proj, proj_b, models)
        self.width = int((models[:, 4] + models[:, 5]).max())

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        out = np.empty(self.width, np.float32)  # fresh: a caller may keep it (edgeemo.model_path holds the last)
        _encode(frame.reshape(-1), *self._arrays, out)
        return out

    @classmethod
    def load(cls, path: Path) -> SparseEncoder | None:
        """The kernel's arrays from an encoder graph written by ``encoder_bytes``; None for any other graph, or
        without the ``onnx`` package (in the cpu and gpu extras) to read it."""
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            return None

        graph = onnx.load(str(path)).graph
        weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
        # Each chain of models of one shape ends in a Split (or an Identity, for one model) of flat_g<chain>
        # into features_<model>.
        members = {node.input[0][len("flat_"):]: [int(name[len("features_"):]) for name in node.output]
                   for node in graph.node
                   if node.op_type in ("Split", "Identity") and node.input[0].startswith("flat_g")}
        try:
            parts: dict[int, tuple] = {}
            for chain, models in members.items():
                index = weights[f"index_{chain}"]  # [e, c, n]
                conv_w = weights[f"conv_w_{chain}"]  # [e, c, n, F]
                conv_b = weights[f"conv_b_{chain}"]  # [c, n, F]
                for j, model in enumerate(models):
                    proj = weights[f"proj_{model}"]  # [n * F, G], rows in (position, filter) order
                    n, f = conv_b.shape[1:]
                    parts[model] = (index[:, j].T, conv_w[:, j].transpose(1, 0, 2), conv_b[j],
                                    proj.reshape(n, f, proj.shape[1]), weights[f"proj_b_{model}"])
        except (KeyError, ValueError, IndexError):
            return None
        if not parts or sorted(parts) != list(range(len(parts))):
            return None
        ordered = [parts[m] for m in range(len(parts))]
        positions = sum(len(p[0]) for p in ordered)
        patch = max(p[0].shape[1] for p in ordered)
        filters = max(p[2].shape[1] for p in ordered)
        gates = max(p[3].shape[2] for p in ordered)
        index = np.zeros((positions, patch), np.int64)
        conv_w = np.zeros((positions, patch, filters), np.float32)
        conv_b = np.zeros((positions, filters), np.float32)
        proj = np.zeros((positions, filters, gates), np.float32)
        proj_b = np.zeros((len(ordered), gates), np.float32)
        models = np.zeros((len(ordered), 6), np.int64)
        first = column = 0
        for m, (i, w, b, p, pb) in enumerate(ordered):
            n, e = i.shape
            f, g = b.shape[1], p.shape[2]
            index[first:first + n, :e], conv_w[first:first + n, :e, :f], conv_b[first:first + n, :f] = i, w, b
            proj[first:first + n, :f, :g], proj_b[m, :g] = p, pb
            models[m] = first, n, e, f, column, g
            first, column = first + n, column + g
        return cls(index, conv_w, conv_b, proj, proj_b, models)
