"""Integrated Gradients (the paper's Eq. 2), vectorised: every interpolation step of a chunk of samples
goes through the model under one gradient tape inside a ``tf.function``.

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da  ~  (x_i - x'_i) * sum_k w_k grad_i(a_k)

The quadrature rule is a choice: the paper's right Riemann sum, the trapezoid rule, or Gauss-Legendre.
Completeness (attributions add up to F(x) - F(x')) is checked for every sample and baseline. A sample
whose error is above 1 % is refined: its path gets its own nodes where the rule misses how F changes
(a few paths of a trained model turn so sharply that no uniform m up to 4096 brings them under 5 %).
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
MAX_REFINED_STEPS = 1024  # nodes on one refined path
REFINE_ABOVE = 0.01  # samples above this error get their own nodes until they are below it
REFINE_CHUNK = 8  # samples refined together: each keeps the input gradient of every node (memory)


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


def relative_error(total: np.ndarray, difference: np.ndarray) -> np.ndarray:
    """|sum(IG) - (F(x) - F(x'))| / max(|F(x) - F(x')|, DIFFERENCE_FLOOR), per sample."""
    return np.abs(total - difference) / np.maximum(np.abs(difference), DIFFERENCE_FLOOR)


@dataclass
class Attribution:
    attributions: np.ndarray  # [n, ...] like the input
    f_input: np.ndarray  # [n] F(x)
    f_baseline: np.ndarray  # [n] F(x')
    steps: int  # m of the rule, for every sample that was not refined
    rule: str
    nodes: np.ndarray | None = None  # [n] gradient evaluations per sample (m, or more where refined)

    @property
    def completeness_error(self) -> np.ndarray:
        """[n] relative completeness error (see relative_error)."""
        total = self.attributions.reshape(len(self.f_input), -1).sum(axis=1)
        return relative_error(total, self.f_input - self.f_baseline)

    @property
    def refined(self) -> int:
        """Samples whose path needed more nodes than the rule's m."""
        return 0 if self.nodes is None else int((self.nodes > self.steps).sum())


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

        @tf.function(reduce_retracing=True)
        def value_and_gradient(points):
            with tf.GradientTape() as tape:
                tape.watch(points)
                out = self.model(points, training=False)[:, self.target]
            return out, tape.gradient(out, points)

        self._path_gradients = path_gradients
        self._value_and_gradient = value_and_gradient

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
        return Attribution(np.concatenate(parts), self.probability(x), self.probability(baseline), steps, rule,
                           np.full(len(x), steps))

    def attribute_checked(self, x: np.ndarray, baseline: np.ndarray, steps: int | str = 64,
                          rule: str = "riemann_right", refine: bool = True) -> Attribution:
        """``attribute`` with the completeness check, warning above 5 %.

        ``steps="auto"`` doubles m for all samples until the worst error is <= 5 %. Then, with ``refine``,
        every sample above 1 % gets its own nodes (adaptive trapezoid) until it is below 1 %.
        """
        if steps == "auto":
            m = 16
            while True:
                result = self.attribute(x, baseline, m, rule)
                if result.completeness_error.max() <= WARN_ABOVE or m >= MAX_AUTO_STEPS:
                    break
                m *= 2
        else:
            result = self.attribute(x, baseline, int(steps), rule)
        if refine:
            self._refine_failing(result, np.asarray(x, np.float32),
                                 np.broadcast_to(np.asarray(baseline, np.float32), np.shape(x)))
        worst = float(result.completeness_error.max(initial=0.0))
        if worst > WARN_ABOVE:
            warnings.warn(
                f"IG completeness: worst relative error {worst:.1%} at m={result.steps} ({rule}, "
                f"{result.refined} samples refined, up to {MAX_REFINED_STEPS} nodes); raise --steps", stacklevel=2,
            )
        return result

    def _refine_failing(self, result: Attribution, x: np.ndarray, baseline: np.ndarray) -> None:
        failing = np.flatnonzero(result.completeness_error > REFINE_ABOVE)
        for start in range(0, len(failing), REFINE_CHUNK):
            rows = failing[start:start + REFINE_CHUNK]
            attributions, nodes = self._adaptive_trapezoid(x[rows], baseline[rows], result.f_input[rows],
                                                           result.f_baseline[rows], result.steps)
            better = relative_error(attributions.reshape(len(rows), -1).sum(axis=1),
                                    result.f_input[rows] - result.f_baseline[rows]) \
                < result.completeness_error[rows]
            result.attributions[rows[better]] = attributions[better]
            result.nodes[rows] = np.where(better, nodes, result.nodes[rows])

    def _adaptive_trapezoid(self, x, baseline, f_input, f_baseline, steps: int):
        """Adaptive trapezoid rule on each path, with an exact error per interval.

        Every gradient evaluation also gives F there, so each interval [a, b] knows how much F really
        changes on it, F(b) - F(a), and how much its trapezoid says, (b - a) (g(a) + g(b)) / 2 . (x - x').
        Starting from m uniform intervals, the intervals whose two numbers disagree most are halved, until
        the sample's completeness error is <= 1 % or it has MAX_REFINED_STEPS nodes. Returns the
        attributions [c, ...] and the nodes used per sample [c].
        """
        delta = x - baseline
        paths = [_Path() for _ in range(len(x))]
        pending = {i: np.linspace(0.0, 1.0, steps + 1) for i in range(len(x))}
        while pending:
            self._evaluate(pending, paths, x, baseline, delta)
            pending = {}
            for i, path in enumerate(paths):
                total = path.total_change()
                if relative_error(total, f_input[i] - f_baseline[i]) > REFINE_ABOVE and len(path) < MAX_REFINED_STEPS:
                    pending[i] = path.split_worst(budget=MAX_REFINED_STEPS - len(path))
        attributions = np.stack([delta[i] * path.weighted_gradient() for i, path in enumerate(paths)])
        return attributions, np.array([len(path) for path in paths])

    def _evaluate(self, pending: dict[int, np.ndarray], paths: list, x, baseline, delta) -> None:
        """F and its gradient at each pending sample's new alphas, in calls of at most points_per_call points."""
        owners = np.concatenate([np.full(len(a), i) for i, a in pending.items()])
        alphas = np.concatenate(list(pending.values())).astype(np.float32)
        values, grads = [], []
        for s in range(0, len(alphas), self.points_per_call):
            o, a = owners[s:s + self.points_per_call], alphas[s:s + self.points_per_call]
            points = baseline[o] + a.reshape((-1,) + (1,) * (x.ndim - 1)) * delta[o]
            value, grad = self._value_and_gradient(points)
            values.append(value.numpy())
            grads.append(grad.numpy())
        values, grads = np.concatenate(values), np.concatenate(grads)
        directional = (grads * delta[owners]).reshape(len(owners), -1).sum(axis=1)  # dF/da at each alpha
        for i in pending:
            mine = owners == i
            paths[i].add(alphas[mine], values[mine], directional[mine], grads[mine])


class _Path:
    """The nodes of one sample's refined path: alpha, F, dF/da and the input gradient at each."""

    def __init__(self) -> None:
        self.alphas = np.empty(0)
        self.values = np.empty(0)
        self.slopes = np.empty(0)
        self.grads: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.alphas)

    def add(self, alphas, values, slopes, grads) -> None:
        order = np.argsort(np.concatenate([self.alphas, alphas]), kind="stable")
        self.alphas = np.concatenate([self.alphas, alphas])[order]
        self.values = np.concatenate([self.values, values])[order]
        self.slopes = np.concatenate([self.slopes, slopes])[order]
        self.grads = (grads if self.grads is None else np.concatenate([self.grads, grads]))[order]

    def _trapezoids(self) -> np.ndarray:
        """What the trapezoid rule says F changes by on each interval."""
        return np.diff(self.alphas) * (self.slopes[1:] + self.slopes[:-1]) / 2

    def total_change(self) -> float:
        return float(self._trapezoids().sum())

    def split_worst(self, budget: int) -> np.ndarray:
        """Midpoints of the worst quarter of the intervals (at most ``budget``): the alphas to evaluate next."""
        errors = np.abs(self._trapezoids() - np.diff(self.values))  # against how much F really changes
        count = min(budget, max(1, len(errors) // 4))
        worst = np.argsort(-errors, kind="stable")[:count]
        return (self.alphas[worst] + self.alphas[worst + 1]) / 2

    def weighted_gradient(self) -> np.ndarray:
        """Trapezoid weights times the input gradients, summed over the nodes: [...] like one input."""
        widths = np.diff(self.alphas)
        weights = np.zeros(len(self.alphas))
        weights[:-1] += widths / 2
        weights[1:] += widths / 2
        return np.tensordot(weights, self.grads, axes=1)
