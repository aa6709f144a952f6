"""The fused streaming pair, built with the ``onnx`` package: a per-frame encoder and a six-emotion head.

A T-EMO/R-EMO model (offline/model.py) is standardise -> per-frame Conv2D + ReLU -> BatchNorm -> flatten ->
LSTM(Q) -> Dense(R, ReLU) -> Dense(2, softmax). Everything up to the LSTM's input projection is per frame,
so a frame's share of it can be computed once, when the frame arrives, instead of once for each of the P
windows the frame belongs to. The ReLU comes before the batch norm, so the batch norm is an affine map of
the flattened features and folds into the LSTM input kernel; the standardisation folds into the
convolution, which becomes a weight per (output position, patch element, filter):

    encoder  [N, U, 2] union landmarks -> [N, E]   E = sum of 4*Q_i: model i's gate pre-activations
             (W x + W_b + R_b, ONNX gate order iofc), the six side by side in EMOTIONS order
    head     [B, P, E] encodings -> [B, 6] P(emotion) of each model, in EMOTIONS order

The head runs one ONNX LSTM per model whose input kernel is the identity (the projection was done by the
encoder), then the six models' dense layers as one block-diagonal pair of matrix products.

Weights are read from the per-emotion ONNX models that tf2onnx wrote (``read_onnx_weights``), so every
bundle can get the pair, the shipped default included, whose Keras models are not in the repository; or
given directly (``EmotionWeights``), as the benchmark does for untrained graphs of any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeemo.errors import EdgeemoError

OPSET = 17
ENCODER_INPUT, ENCODER_OUTPUT = "landmarks", "encoding"
HEAD_INPUT, HEAD_OUTPUT = "encodings", "scores"


@dataclass(frozen=True)
class EmotionWeights:
    """One emotion model's weights, in the layouts the ONNX export uses.

    mean, inv_std: [2, K] standardisation (None: none); conv_kernel [F, kh, kw] (one input channel) over
    (coordinate, landmark), conv_bias [F], conv_stride (sh, sw); bn_scale, bn_shift [F]; lstm_w [4Q, n*F]
    with features in Keras' flatten order (output row, output column, filter); lstm_r [4Q, Q]; lstm_b [8Q]
    (W_b then R_b); fc1 [Q, R], fc1_b [R]; fc2 [R, 2], fc2_b [2].
    """

    landmarks: np.ndarray
    mean: np.ndarray | None
    inv_std: np.ndarray | None
    conv_kernel: np.ndarray
    conv_bias: np.ndarray
    conv_stride: tuple[int, int]
    bn_scale: np.ndarray
    bn_shift: np.ndarray
    lstm_w: np.ndarray
    lstm_r: np.ndarray
    lstm_b: np.ndarray
    fc1: np.ndarray
    fc1_b: np.ndarray
    fc2: np.ndarray
    fc2_b: np.ndarray

    @property
    def units(self) -> int:
        return self.lstm_r.shape[1]

    def positions(self) -> list[list[tuple[int, int]]]:
        """For each conv output position (row-major over rows, columns), its patch as (coordinate, landmark j)."""
        _, kh, kw = self.conv_kernel.shape
        sh, sw = self.conv_stride
        rows, cols = (2 - kh) // sh + 1, (len(self.landmarks) - kw) // sw + 1
        return [[(r * sh + a, c * sw + b) for a in range(kh) for b in range(kw)]
                for r in range(rows) for c in range(cols)]


def encoding_width(models: list[EmotionWeights]) -> int:
    """E: the six models' 4*Q gate columns side by side."""
    return sum(4 * m.units for m in models)


def read_onnx_weights(path: Path, landmarks: np.ndarray) -> EmotionWeights:
    """The weights of a T-EMO/R-EMO model as tf2onnx exported it; EdgeemoError naming the file if the graph
    is not that architecture (the parity check afterwards catches anything this reading gets wrong)."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and others for files that are not ONNX
        raise EdgeemoError(f"{path}: not an ONNX model ({str(exc).splitlines()[0]})") from None
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def fail(what: str) -> EdgeemoError:
        return EdgeemoError(f"{path}: {what}; not a T-EMO/R-EMO export this edgeemo can fuse")

    def const_input(node, skip: str) -> np.ndarray:
        values = [consts[n] for n in node.input if n != skip and n in consts]
        if len(values) != 1:
            raise fail(f"{node.op_type} node {node.name} has no single constant operand")
        return values[0]

    k = len(landmarks)
    first = consumers.get(graph.input[0].name, [])
    mean = inv_std = None
    if len(first) == 1 and first[0].op_type == "Sub":
        mean = const_input(first[0], graph.input[0].name).reshape(2, k)
        scale = consumers.get(first[0].output[0], [])
        if len(scale) != 1 or scale[0].op_type not in ("Mul", "Div"):
            raise fail("standardisation Sub is not followed by Mul or Div")
        value = const_input(scale[0], first[0].output[0]).reshape(2, k)
        inv_std = value if scale[0].op_type == "Mul" else 1.0 / value
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if not convs:
        raise fail("no Conv node")
    # tf2onnx leaves out operands that are all zero (an untrained model's biases): those read as zeros.
    def conv_operands(conv) -> tuple[np.ndarray | None, np.ndarray | None]:
        kernel = consts.get(conv.input[1])
        if kernel is None:
            return None, None
        bias = consts.get(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(kernel.shape[0])
        return kernel, bias

    kernel, bias = conv_operands(convs[0])
    if kernel is None or bias is None or kernel.ndim != 4 or kernel.shape[1] != 1:
        raise fail("the Conv kernel or bias is not a constant [F, 1, kh, kw] and [F]")
    for conv in convs:  # every frame's copy must be the same convolution
        other_kernel, other_bias = conv_operands(conv)
        if not (np.array_equal(other_kernel, kernel) and np.array_equal(other_bias, bias)):
            raise fail("the per-frame Conv nodes do not share one kernel")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in convs[0].attribute}
    if any(attrs.get("pads", [0]) ) or attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1])):
        raise fail("the Conv has padding, groups or dilation")
    stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    filters = kernel.shape[0]
    bn = [n for n in graph.node if n.op_type in ("Mul", "Add") and any(
        np.shape(consts.get(i, ())) == (1, 1, filters, 1, 1) for i in n.input)]
    mul = [n for n in bn if n.op_type == "Mul"]
    add = [n for n in bn if n.op_type == "Add"]
    if len(mul) > 1 or len(add) > 1:
        raise fail("more than one batch-norm Mul or Add over the filters")
    bn_scale = const_input(mul[0], "").reshape(filters) if mul else np.ones(filters, np.float32)
    bn_shift = const_input(add[0], "").reshape(filters) if add else np.zeros(filters, np.float32)
    lstms = [n for n in graph.node if n.op_type == "LSTM"]
    if len(lstms) != 1:
        raise fail(f"{len(lstms)} LSTM nodes, expected 1")
    lstm = lstms[0]
    lstm_attrs = {a.name: onnx.helper.get_attribute_value(a) for a in lstm.attribute}
    if lstm_attrs.get("direction", b"forward") != b"forward" or "clip" in lstm_attrs or lstm_attrs.get("input_forget", 0) \
            or lstm_attrs.get("activations", [b"Sigmoid", b"Tanh", b"Tanh"]) != [b"Sigmoid", b"Tanh", b"Tanh"]:
        raise fail("the LSTM is not a plain forward sigmoid/tanh LSTM")
    w, r = consts.get(lstm.input[1]), consts.get(lstm.input[2])
    units = int(lstm_attrs["hidden_size"])
    b = consts.get(lstm.input[3]) if len(lstm.input) > 3 and lstm.input[3] else np.zeros((1, 8 * units), np.float32)
    if w is None or r is None or b is None:
        raise fail("the LSTM weights are not constants")
    dense = [n for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in consts]
    if len(dense) != 2:
        raise fail(f"{len(dense)} constant matrix products after the LSTM, expected 2 (FC1, FC2)")
    fcs = []
    for node in dense:
        matrix = consts[node.input[1]]
        if node.op_type == "Gemm":
            transb = any(a.name == "transB" and a.i for a in node.attribute)
            fcs.append((matrix.T if transb else matrix, consts[node.input[2]]))
        else:
            adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
            fcs.append((matrix, const_input(adds[0], node.output[0]) if adds else np.zeros(matrix.shape[1], np.float32)))
    return EmotionWeights(
        landmarks=np.asarray(landmarks, np.int64), mean=mean, inv_std=inv_std,
        conv_kernel=kernel[:, 0].astype(np.float32), conv_bias=np.asarray(bias, np.float32), conv_stride=stride,
        bn_scale=bn_scale, bn_shift=bn_shift,
        lstm_w=w[0], lstm_r=r[0], lstm_b=b[0], fc1=fcs[0][0], fc1_b=fcs[0][1], fc2=fcs[1][0], fc2_b=fcs[1][1],
    )


def _encoder_arrays(models: list[EmotionWeights], union: np.ndarray):
    """For c models (of one shape, as encoder_bytes groups them; others would be zero padded to the
    largest): gather indices [c, n, e] into a frame's flattened [U * 2], per-position conv weights
    [c, n, e, F] and biases [c, n, F], projections [c, n * F, G] and biases [c, 1, G]."""
    positions = [m.positions() for m in models]
    n = max(len(p) for p in positions)
    e = max(len(p[0]) for p in positions)
    f = max(m.conv_kernel.shape[0] for m in models)
    g = max(4 * m.units for m in models)
    index = np.zeros((len(models), n, e), np.int64)
    conv_w = np.zeros((len(models), n, e, f), np.float64)
    conv_b = np.zeros((len(models), n, f), np.float64)
    proj = np.zeros((len(models), n * f, g), np.float64)
    proj_b = np.zeros((len(models), 1, g), np.float64)
    for i, (m, pos) in enumerate(zip(models, positions)):
        where = np.searchsorted(union, m.landmarks)
        if not np.array_equal(union[np.minimum(where, len(union) - 1)], m.landmarks):
            raise EdgeemoError("streaming pair: a model reads a landmark outside the union")
        filters = m.conv_kernel.shape[0]
        mean = np.zeros((2, len(m.landmarks))) if m.mean is None else m.mean.astype(np.float64)
        inv_std = np.ones((2, len(m.landmarks))) if m.inv_std is None else m.inv_std.astype(np.float64)
        kernel = m.conv_kernel.astype(np.float64)
        conv_b[i, :len(pos), :filters] = m.conv_bias
        for p, patch in enumerate(pos):
            for j, (c, lm) in enumerate(patch):
                a, b = divmod(j, kernel.shape[2])
                index[i, p, j] = where[lm] * 2 + c  # the frame arrives as [U, 2]: x, y of each landmark
                weight = kernel[:, a, b] * inv_std[c, lm]
                conv_w[i, p, j, :filters] = weight
                conv_b[i, p, :filters] -= weight * mean[c, lm]
        # BatchNorm (per filter) then the LSTM input kernel: one matrix, rows in (position, padded filter) order.
        lstm_w = m.lstm_w.astype(np.float64).reshape(4 * m.units, len(pos), filters)
        scaled = lstm_w * m.bn_scale.astype(np.float64)
        for p in range(len(pos)):
            proj[i, p * f:p * f + filters, :4 * m.units] = scaled[:, p, :].T
        proj_b[i, 0, :4 * m.units] = (lstm_w * m.bn_shift).sum(axis=(1, 2)) + m.lstm_b[:4 * m.units] \
            + m.lstm_b[4 * m.units:]
    return index, conv_w.astype(np.float32), conv_b.astype(np.float32), proj.astype(np.float32), \
        proj_b.astype(np.float32), g


def _shape(m: EmotionWeights) -> tuple[int, int, int, int]:
    """(conv output positions, patch size, filters, gates): models alike in these share one chain of nodes."""
    positions = m.positions()
    return len(positions), len(positions[0]), m.conv_kernel.shape[0], 4 * m.units


def encoder_bytes(models: list[EmotionWeights], union: np.ndarray) -> bytes:
    """The per-frame encoder: [N, U, 2] normalised union landmarks -> [N, E] cached encodings, E = sum 4Q."""
    from onnx import TensorProto, helper, numpy_helper

    init = [numpy_helper.from_array(a, name) for a, name in (
        (np.array([0, -1], np.int64), "flat_shape"), (np.array([-1], np.int64), "last_axis"),
        (np.array([1], np.int64), "patch_axis"))]
    nodes = [helper.make_node("Reshape", [ENCODER_INPUT, "flat_shape"], ["flat"])]     # [N, U*2]
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i, m in enumerate(models):
        groups.setdefault(_shape(m), []).append(i)
    # Models of one shape (all six, in the default bundle) go through one chain, batched over the models;
    # different shapes get chains of their own, so nothing is padded (at batch 1 the projection is bound by
    # reading its weights: padding would cost as much as it adds). The patch axis goes first: ReduceSum over
    # an outer axis adds whole contiguous blocks, several times faster in ONNX Runtime than over an inner one.
    for gi, members in enumerate(groups.values()):
        index, conv_w, conv_b, proj, proj_b, _ = _encoder_arrays([models[i] for i in members], union)
        count, n, e, f = conv_w.shape
        init += [numpy_helper.from_array(a, f"{name}_g{gi}") for a, name in (
            (index.transpose(2, 0, 1).copy(), "index"), (conv_w.transpose(2, 0, 1, 3).copy(), "conv_w"),
            (conv_b, "conv_b"), (np.array([0, count, n * f], np.int64), "feature_shape"))]
        nodes += [
            helper.make_node("Gather", ["flat", f"index_g{gi}"], [f"patches_g{gi}"], axis=1),        # [N, e, c, n]
            helper.make_node("Unsqueeze", [f"patches_g{gi}", "last_axis"], [f"patches_1_g{gi}"]),
            helper.make_node("Mul", [f"patches_1_g{gi}", f"conv_w_g{gi}"], [f"products_g{gi}"]),    # [N, e, c, n, F]
            helper.make_node("ReduceSum", [f"products_g{gi}", "patch_axis"], [f"conv_g{gi}"], keepdims=0),
            helper.make_node("Add", [f"conv_g{gi}", f"conv_b_g{gi}"], [f"conv_biased_g{gi}"]),        # [N, c, n, F]
            helper.make_node("Relu", [f"conv_biased_g{gi}"], [f"features_g{gi}"]),
            helper.make_node("Reshape", [f"features_g{gi}", f"feature_shape_g{gi}"], [f"flat_g{gi}"]),  # [N, c, n*F]
        ]
        split = [f"features_{i}" for i in members]
        nodes.append(helper.make_node("Split", [f"flat_g{gi}"], split, axis=1) if count > 1 else
                     helper.make_node("Identity", [f"flat_g{gi}"], split))                            # [N, 1, n*F]
        for j, i in enumerate(members):  # one MatMul per model: faster than a batched one at N = 1
            init += [numpy_helper.from_array(proj[j], f"proj_{i}"), numpy_helper.from_array(proj_b[j, 0], f"proj_b_{i}")]
            nodes += [helper.make_node("MatMul", [f"features_{i}", f"proj_{i}"], [f"products_{i}"]),  # [N, 1, 4Q]
                      helper.make_node("Add", [f"products_{i}", f"proj_b_{i}"], [f"gates_{i}"])]
    nodes += [helper.make_node("Concat", [f"gates_{i}" for i in range(len(models))], ["gates"], axis=2),
              helper.make_node("Reshape", ["gates", "flat_shape"], [ENCODER_OUTPUT])]        # [N, E]
    graph = helper.make_graph(
        nodes, "edgeemo_streaming_encoder",
        [helper.make_tensor_value_info(ENCODER_INPUT, TensorProto.FLOAT, ["frames", len(union), 2])],
        [helper.make_tensor_value_info(ENCODER_OUTPUT, TensorProto.FLOAT, ["frames", encoding_width(models)])],
        initializer=init)
    return _serialise(graph)


def head_bytes(models: list[EmotionWeights], frames: int) -> bytes:
    """The head: [B, P, E] encodings -> [B, 6] probability of each emotion, six LSTMs and the dense layers."""
    from onnx import TensorProto, helper, numpy_helper

    count = len(models)
    units = [m.units for m in models]
    dense = [m.fc1.shape[1] for m in models]
    fc1 = np.zeros((sum(units), sum(dense)), np.float32)
    fc2 = np.zeros((sum(dense), 2 * count), np.float32)
    q0 = r0 = 0
    for i, m in enumerate(models):  # block diagonal: model i's hidden state meets only its own layers
        fc1[q0:q0 + m.units, r0:r0 + dense[i]] = m.fc1
        fc2[r0:r0 + dense[i], 2 * i:2 * i + 2] = m.fc2
        q0, r0 = q0 + m.units, r0 + dense[i]
    init = [numpy_helper.from_array(a, name) for a, name in (
        (fc1, "fc1"), (np.concatenate([m.fc1_b for m in models]).astype(np.float32), "fc1_b"),
        (fc2, "fc2"), (np.concatenate([m.fc2_b for m in models]).astype(np.float32), "fc2_b"),
        (np.array([0, count, 2], np.int64), "pair_shape"), (np.array([2], np.int64), "gate_axis"),
        (np.array([0], np.int64), "zero_axis"), (np.array(1, np.int64), "positive"))]
    nodes = [
        helper.make_node("Transpose", [HEAD_INPUT], ["time_major"], perm=[1, 0, 2]),       # [P, B, E]
    ]
    hidden, offset = [], 0
    for i, m in enumerate(models):
        gates = 4 * m.units
        init += [numpy_helper.from_array(np.array([gates, gates], np.int64), f"identity_shape_{i}"),
                 numpy_helper.from_array(m.lstm_r[None].astype(np.float32), f"r_{i}"),
                 numpy_helper.from_array(np.array([offset], np.int64), f"start_{i}"),
                 numpy_helper.from_array(np.array([offset + gates], np.int64), f"end_{i}")]
        offset += gates
        nodes += [  # the identity is made in the graph (ONNX Runtime folds it once): 4Q*4Q floats less per file
            helper.make_node("ConstantOfShape", [f"identity_shape_{i}"], [f"zeros_{i}"]),
            helper.make_node("EyeLike", [f"zeros_{i}"], [f"eye_{i}"]),
            helper.make_node("Unsqueeze", [f"eye_{i}", "zero_axis"], [f"identity_{i}"]),      # [1, 4Q, 4Q]
            helper.make_node("Slice", ["time_major", f"start_{i}", f"end_{i}", "gate_axis"], [f"x_{i}"]),  # [P, B, 4Q]
        ]
        # The input kernel is the identity: the encoder already applied W (and both biases) to every frame.
        nodes.append(helper.make_node("LSTM", [f"x_{i}", f"identity_{i}", f"r_{i}"], ["", f"h_{i}"],
                                      hidden_size=m.units))                                     # [1, B, Q]
        hidden.append(f"h_{i}")
    nodes += [
        helper.make_node("Concat", hidden, ["h_all"], axis=2),                             # [1, B, sum Q]
        helper.make_node("Squeeze", ["h_all", "zero_axis"], ["h"]),
        helper.make_node("MatMul", ["h", "fc1"], ["fc1_out"]),
        helper.make_node("Add", ["fc1_out", "fc1_b"], ["fc1_biased"]),
        helper.make_node("Relu", ["fc1_biased"], ["fc1_relu"]),
        helper.make_node("MatMul", ["fc1_relu", "fc2"], ["fc2_out"]),
        helper.make_node("Add", ["fc2_out", "fc2_b"], ["logits"]),
        helper.make_node("Reshape", ["logits", "pair_shape"], ["pairs"]),                 # [B, 6, 2]
        helper.make_node("Softmax", ["pairs"], ["probabilities"], axis=-1),
        helper.make_node("Gather", ["probabilities", "positive"], [HEAD_OUTPUT], axis=2),  # [B, 6]
    ]
    graph = helper.make_graph(
        nodes, "edgeemo_streaming_head",
        [helper.make_tensor_value_info(HEAD_INPUT, TensorProto.FLOAT, ["batch", frames, encoding_width(models)])],
        [helper.make_tensor_value_info(HEAD_OUTPUT, TensorProto.FLOAT, ["batch", count])], initializer=init)
    return _serialise(graph)


def _serialise(graph) -> bytes:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeemo")
    model.ir_version = 8  # what ONNX Runtime 1.20 and later read
    onnx.checker.check_model(model)
    return model.SerializeToString()
