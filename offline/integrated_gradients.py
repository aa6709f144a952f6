"""Integrated Gradients (the paper's Eq. 2), vectorised: every interpolation step of a chunk of samples
goes through the model under one gradient tape inside a ``tf.function``.

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da  ~  (x_i - x'_i) * sum_k w_k grad_i(a_k)

The quadrature rule is a choice: the paper's right Riemann sum, the trapezoid rule, or Gauss-Legendre.
Completeness (attributions add up to F(x) - F(x')) is checked for every sample and baseline.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from edgeemo.errors import EdgeemoError

RULES = ("riemann_right", "trapezoid", "gauss_legendre")
WARN_ABOVE = 0.05  # relative completeness error
# Completeness is relative to |F(x) - F(x')|; below this floor the difference itself is noise, so the
# error is measured against the floor instead (an absolute error of 0.0005 is not a 10 % failure).
DIFFERENCE_FLOOR = 0.05
MAX_AUTO_STEPS = 512


def quadrature(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) with sum_k weights[k] * f(alphas[k]) ~ integral_0^1 f."""
    if steps < 1 or (rule == "trapezoid" and steps < 2):
        raise EdgeemoError(f"--steps: {steps} is too few for the {rule} rule")
    if rule == "riemann_right":  # the paper's Eq. 2: k/m for k = 1..m
        return np.arange(1, steps + 1) / steps, np.full(steps, 1.0 / steps)
    if rule == "trapezoid":
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps), weights
    if rule == "gauss_legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1.0) / 2.0, weights / 2.0
    raise EdgeemoError(f"--rule: unknown integration rule {rule!r} (expected one of {', '.join(RULES)})")


@dataclass
class Attribution:
    attributions: np.ndarray  # [n, ...] like the input
    f_input: np.ndarray  # [n] F(x)
    f_baseline: np.ndarray  # [n] F(x')
    steps: int
    rule: str

    @property
    def completeness_error(self) -> np.ndarray:
        """[n] |sum(IG) - (F(x) - F(x'))| / max(|F(x) - F(x')|, DIFFERENCE_FLOOR)."""
        difference = self.f_input - self.f_baseline
        total = self.attributions.reshape(len(difference), -1).sum(axis=1)
        return np.abs(total - difference) / np.maximum(np.abs(difference), DIFFERENCE_FLOOR)


class IntegratedGradients:
    """IG of one output of a Keras model (``target``: the column of its softmax output to explain)."""

    def __init__(self, model, target: int = 1, points_per_call: int = 2048):
        import tensorflow as tf

        self.model = model
        self.target = target
        self.points_per_call = points_per_call  # interpolation points per gradient call: memory against speed

        @tf.function(reduce_retracing=True)
        def path_gradients(x, baseline, alphas, weights):
            # x, baseline: [c, ...]; alphas, weights: [m]. Interpolate all c*m points at once: [c, m, ...].
            a = tf.reshape(alphas, tf.concat([[1, -1], tf.ones(tf.rank(x) - 1, tf.int32)], axis=0))
            path = tf.expand_dims(baseline, 1) + a * tf.expand_dims(x - baseline, 1)
            flat = tf.reshape(path, tf.concat([[-1], tf.shape(x)[1:]], axis=0))  # [c*m, ...]
            with tf.GradientTape() as tape:
                tape.watch(flat)
                out = self.model(flat, training=False)[:, self.target]
            grads = tf.reshape(tape.gradient(out, flat), tf.shape(path))  # [c, m, ...]
            w = tf.reshape(weights, tf.shape(a))
            return (x - baseline) * tf.reduce_sum(w * grads, axis=1)

        self._path_gradients = path_gradients

    def probability(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(x.astype(np.float32), training=False))[:, self.target]

    def attribute(self, x: np.ndarray, baseline: np.ndarray, steps: int = 64, rule: str = "riemann_right") -> Attribution:
        """IG of every sample in ``x`` [n, ...] against ``baseline`` ([n, ...] or one [...] for all)."""
        alphas, weights = quadrature(rule, steps)
        x = np.asarray(x, dtype=np.float32)
        baseline = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape)
        chunk = max(1, self.points_per_call // steps)
        parts = [
            self._path_gradients(x[i:i + chunk], baseline[i:i + chunk], alphas.astype(np.float32),
                                 weights.astype(np.float32)).numpy()
            for i in range(0, len(x), chunk)
        ]
        return Attribution(np.concatenate(parts), self.probability(x), self.probability(baseline), steps, rule)

    def attribute_checked(self, x: np.ndarray, baseline: np.ndarray, steps: int | str = 64,
                          rule: str = "riemann_right") -> Attribution:
        """``attribute`` with the completeness check; ``steps="auto"`` doubles m until the worst error <= 5 %."""
        if steps == "auto":
            m = 16
            while True:
                result = self.attribute(x, baseline, m, rule)
                if result.completeness_error.max() <= WARN_ABOVE or m >= MAX_AUTO_STEPS:
                    break
                m *= 2
        else:
            result = self.attribute(x, baseline, int(steps), rule)
        worst = float(result.completeness_error.max(initial=0.0))
        if worst > WARN_ABOVE:
            warnings.warn(
                f"IG completeness: worst relative error {worst:.1%} at m={result.steps} ({rule}); "
                "raise --steps or use --steps auto", stacklevel=2,
            )
        return result
