"""The compiled encoder and head against ONNX Runtime on pair graphs of mixed shapes.

The default bundles' six models are alike (tests/test_streaming.py checks the kernels on them with real faces);
a bundle's models may differ in landmarks, filters, kernel, stride, LSTM and dense units, and the kernels must
still give the graphs' numbers. Random weights and inputs: parity does not depend on training.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from edgeemo.benchmark.graphs import random_weights
from edgeemo.compiled_head import HeadKernel
from edgeemo.sparse_encoder import SparseEncoder
from edgeemo.streaming import HEAD_TOLERANCE, SPARSE_TOLERANCE
from edgeemo.streaming_graphs import ENCODER_INPUT, HEAD_INPUT, encoder_bytes, head_bytes

FRAMES = 8


@pytest.fixture(scope="module")
def models():
    """Six models of four shapes: landmarks, filters, LSTM units, dense units, kernel, stride."""
    rng = np.random.default_rng(7)
    shapes = [([1, 5, 9, 33, 61], 4, 8, 4, (2, 1), (1, 1)), ([2, 5, 33, 70, 80, 90], 6, 16, 8, (2, 2), (1, 2)),
              ([1, 5, 9, 33, 61], 4, 8, 4, (2, 1), (1, 1)), ([3, 4, 5, 6], 3, 4, 2, (1, 2), (1, 1)),
              ([10, 20, 30, 40, 50, 60, 70], 5, 12, 6, (2, 3), (1, 2)), ([1, 5, 9, 33, 61], 4, 8, 4, (2, 1), (1, 1))]
    return [random_weights(rng, landmarks, filters, units, dense, kernel, stride)
            for landmarks, filters, units, dense, kernel, stride in shapes]


def session(graph: bytes) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])


def test_the_compiled_encoder_gives_the_graphs_encodings_for_models_of_mixed_shapes(models, tmp_path):
    union = np.unique(np.concatenate([m.landmarks for m in models]))
    path = tmp_path / "encoder.onnx"
    path.write_bytes(encoder_bytes(models, union))
    kernel = SparseEncoder.load(path)
    assert kernel is not None
    faces = np.random.default_rng(1).normal(0.0, 0.5, (20, len(union), 2)).astype(np.float32)
    expected = session(path.read_bytes()).run(None, {ENCODER_INPUT: faces})[0]
    got = np.stack([kernel(face) for face in faces])
    np.testing.assert_allclose(got, expected, atol=SPARSE_TOLERANCE * np.abs(expected).max(), rtol=0)


def test_the_compiled_head_gives_the_graphs_scores_for_models_of_mixed_shapes(models, tmp_path):
    path = tmp_path / "head.onnx"
    path.write_bytes(head_bytes(models, FRAMES))
    kernel = HeadKernel.load(path)
    assert kernel is not None
    width = sum(4 * m.units for m in models)
    encodings = np.random.default_rng(2).normal(0.0, 2.0, (30, FRAMES, width)).astype(np.float32)
    expected = session(path.read_bytes()).run(None, {HEAD_INPUT: encodings})[0]
    assert np.ptp(expected, axis=0).min() > 0.05  # scores that move: each model's part of the arithmetic counts
    np.testing.assert_allclose(np.stack([kernel(window) for window in encodings]), expected, atol=HEAD_TOLERANCE,
                               rtol=0)
