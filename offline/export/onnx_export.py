"""Keras model -> ONNX file, and the parity check that refuses an export whose outputs drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.io import atomic_path

OPSET = 17
INPUT_NAME = "landmarks"
PARITY_TOLERANCE = 1e-4


def export_onnx(model, path: Path, frames: int, landmarks: int) -> Path:
    """Write ``model`` as ONNX with one named input [batch, frames, 2, landmarks, 1] (batch dynamic)."""
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, frames, 2, landmarks, 1), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    with atomic_path(path, suffix=".onnx") as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return Path(path)


def onnx_probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: x.astype(np.float32)})[0]


def check_parity(model, path: Path, x: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> float:
    """Largest |Keras - ONNX| over ``x`` [n, frames, 2, K, 1]; raises EdgeemoError above ``tolerance``."""
    keras_out = np.asarray(model(x.astype(np.float32), training=False))
    difference = float(np.abs(keras_out - onnx_probabilities(path, x)).max())
    if not difference <= tolerance:
        raise EdgeemoError(
            f"{path}: ONNX and Keras outputs differ by {difference:.2e} (> {tolerance:.0e}) on held-out data; "
            "refusing to write the bundle"
        )
    return difference
