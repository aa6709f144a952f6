"""Untrained per-emotion models built with ``onnx`` itself, for ``edgeemo bench`` where TensorFlow is not
installed (the edge box, where users measure latency).

Each graph has the operations and shapes tf2onnx writes for offline/model.py: standardisation, the
TimeDistributed convolution unrolled into one Conv chain per frame, batch norm, flatten, ONNX's LSTM, the two
dense layers and the softmax; so it costs what an exported model costs (the benchmark records which kind it
timed), and ``edgeemo.streaming_graphs.read_onnx_weights`` reads it as it reads a tf2onnx export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeemo.streaming_graphs import EmotionWeights, OPSET


def random_weights(rng: np.random.Generator, landmarks: list[int], filters: int, lstm_units: int, dense_units: int,
                   kernel: tuple[int, int] = (2, 1), stride: tuple[int, int] = (1, 1),
                   standardize: bool = True) -> EmotionWeights:
    """Glorot-like random weights of one model (latency does not depend on their values)."""
    k = len(landmarks)
    rows, cols = (2 - kernel[0]) // stride[0] + 1, (k - kernel[1]) // stride[1] + 1
    features = rows * cols * filters

    def glorot(*shape: int) -> np.ndarray:
        return rng.uniform(-1, 1, shape).astype(np.float32) * np.sqrt(6.0 / sum(shape[-2:]))

    return EmotionWeights(
        landmarks=np.asarray(landmarks, np.int64),
        mean=rng.normal(0, 0.1, (2, k)).astype(np.float32) if standardize else None,
        inv_std=rng.uniform(0.5, 2.0, (2, k)).astype(np.float32) if standardize else None,
        conv_kernel=glorot(filters, *kernel), conv_bias=rng.normal(0, 0.1, filters).astype(np.float32),
        conv_stride=tuple(stride), bn_scale=rng.uniform(0.5, 1.5, filters).astype(np.float32),
        bn_shift=rng.normal(0, 0.1, filters).astype(np.float32),
        lstm_w=glorot(4 * lstm_units, features), lstm_r=glorot(4 * lstm_units, lstm_units),
        lstm_b=rng.normal(0, 0.1, 8 * lstm_units).astype(np.float32),
        fc1=glorot(lstm_units, dense_units), fc1_b=np.zeros(dense_units, np.float32),
        fc2=glorot(dense_units, 2), fc2_b=np.zeros(2, np.float32),
    )


def per_emotion_bytes(w: EmotionWeights, frames: int, input_name: str = "landmarks") -> bytes:
    """One emotion's model, [B, P, 2, K, 1] -> [B, 2], laid out as tf2onnx lays out offline/model.py."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, filters, units = len(w.landmarks), w.conv_kernel.shape[0], w.units
    init = [numpy_helper.from_array(a, name) for a, name in (
        (w.conv_kernel[:, None], "conv_w"), (w.conv_bias, "conv_b"),
        (w.bn_scale.reshape(1, 1, filters, 1, 1), "bn_scale"), (w.bn_shift.reshape(1, 1, filters, 1, 1), "bn_shift"),
        (w.lstm_w[None], "lstm_w"), (w.lstm_r[None], "lstm_r"), (w.lstm_b[None], "lstm_b"),
        (w.fc1, "fc1_w"), (w.fc1_b, "fc1_b"), (w.fc2, "fc2_w"), (w.fc2_b, "fc2_b"),
        (np.array([0, frames, -1], np.int64), "flat_shape"), (np.array([0], np.int64), "axis_0"))]
    nodes, x = [], input_name
    if w.mean is not None:
        init += [numpy_helper.from_array(w.mean.reshape(1, 1, 2, k, 1), "mean"),
                 numpy_helper.from_array(w.inv_std.reshape(1, 1, 2, k, 1), "inv_std")]
        nodes += [helper.make_node("Sub", [x, "mean"], ["centred"]), helper.make_node("Mul", ["centred", "inv_std"], ["std"])]
        x = "std"
    nodes.append(helper.make_node("Transpose", [x], ["time_major"], perm=[1, 0, 2, 3, 4]))  # [P, B, 2, K, 1]
    for t in range(frames):  # the TimeDistributed convolution, one chain per frame as tf2onnx unrolls it
        init.append(numpy_helper.from_array(np.array(t, np.int64), f"t_{t}"))
        nodes += [
            helper.make_node("Gather", ["time_major", f"t_{t}"], [f"frame_{t}"], axis=0),     # [B, 2, K, 1]
            helper.make_node("Transpose", [f"frame_{t}"], [f"nchw_{t}"], perm=[0, 3, 1, 2]),  # [B, 1, 2, K]
            helper.make_node("Conv", [f"nchw_{t}", "conv_w", "conv_b"], [f"conv_{t}"], strides=list(w.conv_stride)),
            helper.make_node("Relu", [f"conv_{t}"], [f"relu_{t}"]),
            helper.make_node("Unsqueeze", [f"relu_{t}", "axis_0"], [f"stacked_{t}"]),
        ]
    nodes += [
        helper.make_node("Concat", [f"stacked_{t}" for t in range(frames)], ["conv"], axis=0),  # [P, B, F, H, W]
        helper.make_node("Mul", ["conv", "bn_scale"], ["bn_scaled"]),
        helper.make_node("Add", ["bn_scaled", "bn_shift"], ["bn"]),
        helper.make_node("Transpose", ["bn"], ["nhwc"], perm=[1, 0, 3, 4, 2]),                  # [B, P, H, W, F]
        helper.make_node("Reshape", ["nhwc", "flat_shape"], ["features"]),                      # [B, P, H*W*F]
        helper.make_node("Transpose", ["features"], ["sequence"], perm=[1, 0, 2]),              # [P, B, H*W*F]
        helper.make_node("LSTM", ["sequence", "lstm_w", "lstm_r", "lstm_b"], ["", "h"], hidden_size=units),
        helper.make_node("Squeeze", ["h", "axis_0"], ["last"]),
        helper.make_node("MatMul", ["last", "fc1_w"], ["fc1_out"]),
        helper.make_node("Add", ["fc1_out", "fc1_b"], ["fc1_biased"]),
        helper.make_node("Relu", ["fc1_biased"], ["fc1_relu"]),
        helper.make_node("MatMul", ["fc1_relu", "fc2_w"], ["fc2_out"]),
        helper.make_node("Add", ["fc2_out", "fc2_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["fc2"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "per_emotion", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", frames, 2, k, 1])],
        [helper.make_tensor_value_info("fc2", TensorProto.FLOAT, ["batch", 2])], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeemo-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_model(path: Path, w: EmotionWeights, frames: int) -> Path:
    path.write_bytes(per_emotion_bytes(w, frames))
    return path
