"""T-EMO and R-EMO (the paper's Fig. 1): one binary classifier per emotion over a landmark sequence.

    landmarks [P, 2, L, 1]
      -> (standardise each coordinate of each landmark, fixed statistics of the training set)
      -> per frame (TimeDistributed): Conv2D, F filters, ReLU    R-EMO: random kernels, never trained
      -> BatchNormalization -> per frame Flatten                 T-EMO: trained
      -> LSTM(Q) -> Dropout -> Dense(R, ReLU) -> Dense(2, softmax): P(not emotion), P(emotion)

Only standard layers (Conv2D, BatchNormalization, LSTM, Dense, Reshape), so tf2onnx 1.17 exports it
with ONNX's own LSTM op; the input is named ``landmarks`` for the export and the runtime.
"""

from __future__ import annotations

import numpy as np

from edgeemo.errors import EdgeemoError

ARCHS = ("t-emo", "r-emo")
INPUT_NAME = "landmarks"
CONV_LAYER = "frame_conv"  # the TimeDistributed Conv2D; R-EMO's weights in it never change
MIN_STD = 1e-3  # a landmark that never moves in training must not blow up when it moves at test time


def build_model(
    frames: int,
    landmarks: int,
    filters: int,
    lstm_units: int,
    dense_units: int,
    *,
    arch: str = "t-emo",
    kernel: tuple[int, int] = (2, 1),
    stride: tuple[int, int] = (1, 1),
    dropout: float = 0.3,
    seed: int = 0,
    standardize: tuple[np.ndarray, np.ndarray] | None = None,
):
    """An uncompiled keras.Model taking [batch, frames, 2, landmarks, 1] and giving [batch, 2] softmax.

    ``standardize`` is (mean, std), each [2, landmarks], of the training windows; None feeds raw input.
    The default 2x1 kernel sees one landmark's (x, y): why, see offline/resources/configs/train.toml.
    """
    import keras
    from keras import layers

    _check_arguments(arch, landmarks, kernel, stride)
    inputs = keras.Input((frames, 2, landmarks, 1), name=INPUT_NAME)
    x = inputs
    if standardize is not None:
        x = _standardize_layer(*standardize, landmarks)(x)
    conv = layers.Conv2D(
        filters, kernel, strides=stride, activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        trainable=arch == "t-emo",  # R-EMO: the seeded random kernels are the features
        name="conv",
    )
    x = layers.TimeDistributed(conv, name=CONV_LAYER)(x)
    x = layers.BatchNormalization(name="batch_norm")(x)
    x = layers.Reshape((frames, -1), name="flatten")(x)  # per frame flatten, as a plain Reshape for ONNX
    x = layers.LSTM(lstm_units, seed=seed, name="lstm")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
    outputs = layers.Dense(2, activation="softmax", name="fc2")(x)
    return keras.Model(inputs, outputs, name=arch.replace("-", "_"))


def compile_model(model, learning_rate: float):
    """Adam and cross-entropy over the two softmax outputs, which equals the paper's binary cross-entropy
    (Eq. 3) on P(emotion). Weighted accuracy: with balanced sample weights it is balanced accuracy."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def conv_weights(model) -> list[np.ndarray]:
    """The per-frame convolution's kernel and bias (R-EMO's are the random ones it was built with)."""
    return [np.array(w) for w in model.get_layer(CONV_LAYER).get_weights()]


def standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [2, L] of windows [N, P, 2, L] over windows and frames (std floored at MIN_STD)."""
    mean = x.mean(axis=(0, 1), dtype=np.float64)
    std = np.maximum(x.std(axis=(0, 1), dtype=np.float64), MIN_STD)
    return mean.astype(np.float32), std.astype(np.float32)


def _standardize_layer(mean: np.ndarray, std: np.ndarray, landmarks: int):
    from keras import layers

    if np.shape(mean) != (2, landmarks) or np.shape(std) != (2, landmarks):
        raise EdgeemoError(f"standardize: mean and std must be [2, {landmarks}], got {np.shape(mean)}, {np.shape(std)}")
    # Normalization over axes (2, 3): one mean and variance per coordinate and landmark, stored as weights.
    return layers.Normalization(axis=(2, 3), mean=mean, variance=np.square(std), name="standardize")


def _check_arguments(arch: str, landmarks: int, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
    if arch not in ARCHS:
        raise EdgeemoError(f"--arch: unknown architecture {arch!r} (expected {' or '.join(ARCHS)})")
    if len(kernel) != 2 or not 1 <= kernel[0] <= 2 or not 1 <= kernel[1] <= landmarks:
        raise EdgeemoError(f"kernel: {tuple(kernel)} does not fit a 2 x {landmarks} frame")
    if len(stride) != 2 or min(stride) < 1:
        raise EdgeemoError(f"stride: {tuple(stride)} must be two integers >= 1")
