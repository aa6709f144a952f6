"""Fitting one T-EMO or R-EMO network: balanced sample weights, early stopping on validation loss."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from offline.training.evaluate import balanced_weights
from offline.training.model import build_model, compile_model, standardization
from offline.training.train_config import Hyperparameters, Settings
from offline.training.windows import Windows

PREDICT_BATCH = 256


@dataclass
class Fit:
    model: object  # keras.Model with the weights of its best validation epoch
    history: dict[str, list[float]]  # per epoch: loss, accuracy, val_loss, val_accuracy
    best_epoch: int  # 0-based
    seconds: float  # wall time of model.fit


def fit_network(
    arch: str, train: Windows, val: Windows, emotion: str, hyperparameters: Hyperparameters, settings: Settings,
    *, seed: int, epochs: int, patience: int, on_epoch: Callable[[int, dict], None] | None = None,
) -> Fit:
    """Train one network on ``train`` for ``emotion``, stopping when validation loss stops improving.

    The 1:5 (1:11 with apex, offset and neutral windows) imbalance is met by per-sample weights that give
    each class half of the total, on the validation set too, so early stopping watches the same
    balanced loss that training lowers.
    """
    import keras

    keras.utils.set_random_seed(seed)  # shuffling, dropout and LSTM initialisation, per seed
    train_labels, val_labels = train.labels(emotion), val.labels(emotion)
    model = build_model(
        train.x.shape[1], train.x.shape[-1], *hyperparameters, arch=arch, kernel=settings.model.kernel,
        stride=settings.model.stride, dropout=settings.model.dropout, seed=seed,
        standardize=standardization(train.x) if settings.model.standardize else None,
    )
    compile_model(model, settings.train.learning_rate)
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=on_epoch))
    start = time.perf_counter()
    history = model.fit(
        train.model_input(), train_labels, sample_weight=balanced_weights(train_labels),
        validation_data=(val.model_input(), val_labels, balanced_weights(val_labels)),
        epochs=epochs, batch_size=settings.train.batch_size, shuffle=True, callbacks=callbacks, verbose=0,
    ).history
    seconds = time.perf_counter() - start
    history = {key: [float(v) for v in values] for key, values in history.items()}
    return Fit(model, history, int(np.argmin(history["val_loss"])), seconds)


def predict_scores(model, windows: Windows) -> np.ndarray:
    """P(emotion) for each window, float32."""
    return model.predict(windows.model_input(), batch_size=PREDICT_BATCH, verbose=0)[:, 1].astype(np.float32)
