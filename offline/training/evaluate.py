"""Labels, metrics and fusion for the six binary models, under two evaluation protocols.

Binary label of a window for an emotion: 1 when it shows that emotion rising or held (segment onset or
apex), else 0 (other emotions, neutral windows, and offsets, whose expression is ending). A model run on
a sliding window then keeps its label while the expression is held and drops it when it ends.

Protocols:
  paper      onset windows only (CK+'s neutral-to-apex sequences), as the paper's Tables 6-7
  streaming  every window (onset, apex, offset, neutral), as the live camera sees them

Fusion: the runtime's own (edgeemo.classifier.fuse): the emotion with the highest score among those at or
above their own threshold, else neutral; so a report's fused result is what a bundle with those thresholds does.
"""

from __future__ import annotations

import numpy as np

from edgeemo.classifier import fuse as fuse_window
from edgeemo.emotions import EMOTIONS, NEUTRAL, NEUTRAL_INDEX

PROTOCOLS = ("paper", "streaming")
EXPRESSIVE_SEGMENTS = ("onset", "apex")
METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc")
CLASSES = EMOTIONS + (NEUTRAL,)  # rows and columns of the fused confusion matrix


def binary_labels(y: np.ndarray, segment: np.ndarray, emotion: int) -> np.ndarray:
    """1 where the window shows ``emotion`` (index into EMOTIONS) rising or held, else 0; int64."""
    return ((np.asarray(y) == emotion) & np.isin(segment, EXPRESSIVE_SEGMENTS)).astype(np.int64)


def expressed(y: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Seven-class truth: the emotion index where it is rising or held, NEUTRAL_INDEX elsewhere."""
    return np.where(np.isin(segment, EXPRESSIVE_SEGMENTS), y, NEUTRAL_INDEX).astype(np.int64)


def protocol_mask(protocol: str, segment: np.ndarray) -> np.ndarray:
    if protocol == "paper":
        return np.asarray(segment) == "onset"
    if protocol == "streaming":
        return np.ones(len(segment), dtype=bool)
    raise ValueError(f"unknown protocol {protocol!r}")


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights giving each class half the total weight (n / (2 * n_class)), float32."""
    labels = np.asarray(labels)
    weights = np.zeros(len(labels), dtype=np.float32)
    for value in (0, 1):
        count = int((labels == value).sum())
        if count:
            weights[labels == value] = len(labels) / (2.0 * count)
    return weights


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Accuracy, balanced accuracy, F1 and ROC AUC (None when only one class is present) of P(emotion)."""
    from sklearn import metrics

    labels = np.asarray(labels)
    predicted = (np.asarray(scores) >= threshold).astype(np.int64)
    both = len(np.unique(labels)) == 2
    return {
        "n": int(len(labels)),
        "positives": int(labels.sum()),
        "accuracy": float(metrics.accuracy_score(labels, predicted)) if len(labels) else None,
        "balanced_accuracy": float(metrics.balanced_accuracy_score(labels, predicted)) if both else None,
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0.0)) if len(labels) else None,
        "roc_auc": float(metrics.roc_auc_score(labels, scores)) if both else None,
    }


def protocol_metrics(y: np.ndarray, segment: np.ndarray, scores: np.ndarray, emotion: int, threshold: float) -> dict:
    """{protocol: binary_metrics} of one model's test scores."""
    labels = binary_labels(y, segment, emotion)
    results = {}
    for protocol in PROTOCOLS:
        mask = protocol_mask(protocol, segment)
        results[protocol] = binary_metrics(labels[mask], scores[mask], threshold)
    return results


def fuse(scores: np.ndarray, thresholds) -> np.ndarray:
    """Fused label per window from six scores [N, 6] and thresholds [6] (or one for all): an index into
    EMOTIONS, or NEUTRAL_INDEX. Window by window through the runtime's ``fuse``, so that both are one rule."""
    scores = np.asarray(scores)
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=scores.dtype), scores.shape[1:])
    labels = [fuse_window(row, thresholds) for row in scores]
    return np.array([NEUTRAL_INDEX if label == NEUTRAL else EMOTIONS.index(label) for label in labels], dtype=np.int64)


def confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """7x7 counts, rows truth and columns prediction, in CLASSES order (neutral last)."""
    matrix = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    np.add.at(matrix, (_class_position(truth), _class_position(predicted)), 1)
    return matrix


def mean_std(values) -> tuple[float, float] | None:
    """Mean and sample standard deviation (0 for one value) of the values that are not None."""
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if not present.size:
        return None
    return float(present.mean()), float(present.std(ddof=1)) if present.size > 1 else 0.0


def _class_position(labels: np.ndarray) -> np.ndarray:
    """Row or column in CLASSES: emotions keep their index, neutral (-1) goes last."""
    labels = np.asarray(labels)
    return np.where(labels == NEUTRAL_INDEX, len(EMOTIONS), labels)
