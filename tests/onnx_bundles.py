"""Small real ONNX bundles for runtime tests: one linear-softmax model per emotion, built with onnx.helper.

Model e computes softmax(flatten(x) @ W_e) over its own landmarks, so a test can recompute every score in
numpy. Export of trained Keras models is tested separately (tests/test_export.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeemo.bundle import write_manifest
from edgeemo.emotions import EMOTIONS
from edgeemo.normalize import NORMALIZATION


def linear_model_bytes(weights: np.ndarray, frames: int, k: int, input_name: str = "landmarks") -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Flatten", [input_name], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "linear",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", frames, 2, k, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_linear_bundle(folder: Path, landmarks: dict[str, list[int]], frames: int = 4, seed: int = 0,
                       threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Write a valid bundle; return each emotion's weight matrix [frames*2*K, 2]."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    weights, models = {}, {}
    for emotion in EMOTIONS:
        k = len(landmarks[emotion])
        w = rng.normal(size=(frames * 2 * k, 2)).astype(np.float32)
        (folder / f"{emotion}.onnx").write_bytes(linear_model_bytes(w, frames, k))
        weights[emotion] = w
        models[emotion] = {"file": f"{emotion}.onnx", "landmarks": list(landmarks[emotion]),
                           "threshold": threshold, "input_name": "landmarks"}
    write_manifest(folder, {
        "bundle_id": "test-linear", "emotions": list(EMOTIONS), "frames": frames, "frame_stride": 2,
        "normalization": NORMALIZATION, "models": models, "architecture": {"name": "linear-test"},
    })
    return weights
