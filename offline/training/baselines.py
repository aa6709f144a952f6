"""The paper's baselines: a linear and an RBF support vector machine per emotion, on the same windows
and splits as the networks, each window flattened to one vector [P * 2 * K] and standardised.

The SVMs are scikit-learn's SVC on Gram matrices computed here with BLAS: the same models as
``SVC(kernel="linear" | "rbf", gamma="scale")``, but libsvm's own kernel code took 5-40 s per fit on
windows of ~15,000 values. One seed's windows are the same for every emotion (only the labels
differ), so their Gram matrices are computed once and shared by all its SVMs (``SvmFeatures``).
"""

from __future__ import annotations

import numpy as np

from offline.training.run_folder import BASELINES


class SvmFeatures:
    """Standardised training windows' dot products with themselves and with other parts (val, test)."""

    def __init__(self, train: np.ndarray, **others: np.ndarray) -> None:
        flat = _flatten(train)
        mean, std = flat.mean(axis=0), flat.std(axis=0)
        std[std == 0] = 1.0
        flat = (flat - mean) / std
        self.gamma = 1.0 / (flat.shape[1] * flat.var())  # gamma="scale"
        self._dots = {"train": flat @ flat.T}
        self._squares = {"train": np.diag(self._dots["train"]).copy()}
        for name, x in others.items():
            other = (_flatten(x) - mean) / std
            self._dots[name], self._squares[name] = other @ flat.T, (other**2).sum(axis=1)

    def gram(self, kind: str, part: str) -> np.ndarray:
        """Kernel values [n_part, n_train] of the ``kind`` SVM between ``part`` and the training windows."""
        if kind not in BASELINES:
            raise ValueError(f"unknown baseline {kind!r}")
        dot = self._dots[part]
        if kind == "svm-linear":
            return dot
        squared = self._squares[part][:, None] + self._squares["train"][None, :] - 2.0 * dot
        return np.exp(-self.gamma * np.maximum(squared, 0.0))


def fit_svm(kind: str, features: SvmFeatures, labels: np.ndarray, *, c: float, seed: int):
    """An SVC fitted on the training windows; classes weighted 'balanced' (n / (2 * n_class)), as the
    networks' windows are."""
    from sklearn.svm import SVC

    svm = SVC(C=c, kernel="precomputed", class_weight="balanced", random_state=seed)
    return svm.fit(features.gram(kind, "train"), labels)


def svm_scores(svm, kind: str, features: SvmFeatures, part: str) -> np.ndarray:
    """A score in (0, 1) per window of ``part``: the logistic of the SVM's decision value, so 0.5 is the
    SVM's own boundary and the fusion can compare it with the networks' P(emotion)."""
    decision = svm.decision_function(features.gram(kind, part))
    return (1.0 / (1.0 + np.exp(-decision))).astype(np.float32)


def _flatten(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype(np.float64)
