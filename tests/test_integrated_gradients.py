"""Integrated Gradients: quadrature weights, completeness, batched against one-by-one, analytic cases."""

import os
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.offline
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgeemo.errors import EdgeemoError  # noqa: E402
from offline.explain.integrated_gradients import IntegratedGradients, quadrature  # noqa: E402


def test_quadrature_weights_are_pinned_for_small_m():
    a, w = quadrature("riemann_right", 4)
    np.testing.assert_allclose(a, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(w, [0.25] * 4)
    a, w = quadrature("trapezoid", 3)
    np.testing.assert_allclose(a, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(w, [0.25, 0.5, 0.25])
    a, w = quadrature("gauss_legendre", 2)
    np.testing.assert_allclose(a, [0.5 - 0.5 / np.sqrt(3), 0.5 + 0.5 / np.sqrt(3)])
    np.testing.assert_allclose(w, [0.5, 0.5])


@pytest.mark.parametrize("rule", ["riemann_right", "trapezoid", "gauss_legendre"])
def test_every_rule_integrates_a_cubic_on_0_1(rule):
    a, w = quadrature(rule, 64)
    assert (w * a**3).sum() == pytest.approx(0.25, abs=0.02 if rule == "riemann_right" else 1e-3)


def test_unknown_rule_and_too_few_steps_are_refused():
    with pytest.raises(EdgeemoError, match="--rule: unknown integration rule 'simpson'"):
        quadrature("simpson", 8)
    with pytest.raises(EdgeemoError, match="--steps: 1 is too few for the trapezoid rule"):
        quadrature("trapezoid", 1)


def _softmax_model(seed=0, frames=4, k=6):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((frames, 2, k, 1))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(4, (2, 2), activation="relu"))(inp)
    x = keras.layers.TimeDistributed(keras.layers.Flatten())(x)
    x = keras.layers.LSTM(5)(x)
    x = keras.layers.Dense(6, activation="tanh")(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inp, out)


def test_linear_logit_model_has_closed_form_attributions():
    import keras

    # F = sigmoid(w.x) through a 2-way softmax; on a path where w.x is tiny F is nearly linear.
    inp = keras.Input((3,))
    logits = keras.layers.Dense(2, use_bias=False)(inp)
    model = keras.Model(inp, keras.layers.Softmax()(logits))
    model.layers[1].set_weights([np.array([[0.0, 0.0], [0.0, 0.01], [0.0, -0.02]], np.float32)])
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    result = IntegratedGradients(model).attribute(x, np.zeros_like(x), steps=32, rule="gauss_legendre")
    slope = 0.25  # d sigmoid / dz at 0
    np.testing.assert_allclose(result.attributions[0], slope * x[0] * [0.0, 0.01, -0.02], rtol=2e-3)


def test_completeness_holds_and_batched_equals_one_by_one():
    model = _softmax_model()
    rng = np.random.default_rng(0)
    x = rng.random((5, 4, 2, 6, 1), dtype=np.float32)
    baseline = rng.random((4, 2, 6, 1), dtype=np.float32)
    ig = IntegratedGradients(model, points_per_call=256)
    batched = ig.attribute_checked(x, baseline, steps=128, rule="gauss_legendre")
    assert np.median(batched.completeness_error) <= 0.01
    assert batched.completeness_error.max() <= 0.05
    one_by_one = np.concatenate([ig.attribute(x[i:i + 1], baseline, 128, "gauss_legendre").attributions
                                 for i in range(len(x))])
    np.testing.assert_allclose(batched.attributions, one_by_one, atol=1e-6)


def test_auto_steps_reach_the_completeness_target():
    model = _softmax_model(seed=3)
    rng = np.random.default_rng(1)
    x = 3 * rng.random((4, 4, 2, 6, 1), dtype=np.float32)
    result = IntegratedGradients(model).attribute_checked(x, np.zeros_like(x), steps="auto")
    assert result.completeness_error.max() <= 0.05 and result.steps >= 16


def _steep_step_model(sharpness=400.0):
    """F = sigmoid(sharpness * (x1 + x2 - 1)) through a 2-way softmax: a step a uniform grid can miss."""
    import keras

    inp = keras.Input((2,))
    z = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(sharpness),
                           bias_initializer=keras.initializers.Constant(-sharpness))(inp)
    logits = keras.layers.Concatenate()([keras.ops.zeros_like(z), z])
    return keras.Model(inp, keras.layers.Softmax()(logits))


def test_refinement_finds_a_step_between_the_rule_nodes():
    model = _steep_step_model()
    x = np.array([[0.9, 0.6], [0.3, 1.2], [0.2, 0.1]], np.float32)  # steps at alpha 2/3, 2/3; none
    ig = IntegratedGradients(model)
    plain = ig.attribute(x, np.zeros_like(x), 16)
    assert plain.completeness_error[:2].min() > 0.05  # the step falls between nodes k/16
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refined: no completeness warning
        refined = ig.attribute_checked(x, np.zeros_like(x), steps=16)
    assert refined.completeness_error.max() <= 0.01
    assert refined.refined == 2 and refined.nodes[2] == 16  # only the paths that needed it
    reference = ig.attribute(x, np.zeros_like(x), steps=20000, rule="trapezoid")
    np.testing.assert_allclose(refined.attributions, reference.attributions, atol=0.01)


def test_refinement_off_keeps_the_paper_sum_and_warns():
    model = _steep_step_model()
    x = np.array([[0.9, 0.6]], np.float32)
    ig = IntegratedGradients(model)
    with pytest.warns(UserWarning, match="IG completeness: worst relative error"):
        result = ig.attribute_checked(x, np.zeros_like(x), steps=16, refine=False)
    np.testing.assert_array_equal(result.attributions, ig.attribute(x, np.zeros_like(x), 16).attributions)
    assert result.refined == 0
