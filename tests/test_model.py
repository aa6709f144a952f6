"""T-EMO / R-EMO: learning a separable landmark signal, R-EMO's frozen random convolution, shapes, saving."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.errors import EdgeemoError

pytestmark = pytest.mark.offline

FRAMES, LANDMARKS = 6, 12


@pytest.fixture(scope="module", autouse=True)
def tf_one_thread():
    from offline.training.tf_setup import tensorflow

    tensorflow(threads=1)


def separable_windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows [n, P, 2, L] of still faces plus noise; in the positive half, landmarks 0-2 rise over time."""
    rng = np.random.default_rng(seed)
    mean_face = np.random.default_rng(99).uniform(0.2, 0.8, (1, 1, 2, LANDMARKS))
    faces = (mean_face + rng.normal(0, 0.01, (n, 1, 2, LANDMARKS))).astype(np.float32)
    x = np.repeat(faces, FRAMES, axis=1) + rng.normal(0, 0.004, (n, FRAMES, 2, LANDMARKS)).astype(np.float32)
    labels = np.arange(n) % 2
    x[labels == 1, :, 1, :3] -= np.linspace(0, 0.04, FRAMES, dtype=np.float32)[:, None]
    return x, labels


def make(arch: str = "t-emo", **kwargs):
    from offline.training.model import build_model, compile_model

    kwargs.setdefault("standardize", None)
    return compile_model(build_model(FRAMES, LANDMARKS, 4, 8, 8, arch=arch, seed=3, **kwargs), 1e-2)


def test_learns_a_separable_landmark_signal_above_95_percent():
    from offline.training.model import standardization

    x_train, y_train = separable_windows(160, seed=0)
    x_test, y_test = separable_windows(80, seed=1)
    model = make(standardize=standardization(x_train))
    model.fit(x_train[..., None], y_train, epochs=15, batch_size=16, verbose=0)
    predicted = model.predict(x_test[..., None], verbose=0).argmax(axis=1)
    assert (predicted == y_test).mean() > 0.95


@pytest.mark.parametrize("arch, conv_changes", [("r-emo", False), ("t-emo", True)], ids=["r-emo", "t-emo"])
def test_only_t_emo_trains_its_convolution(arch, conv_changes):
    from offline.training.model import conv_weights

    x, y = separable_windows(32, seed=2)
    model = make(arch)
    before = conv_weights(model)
    model.fit(x[..., None], y, epochs=1, batch_size=16, verbose=0)
    after = conv_weights(model)
    identical = all(np.array_equal(a, b) for a, b in zip(before, after))
    assert identical != conv_changes


def test_kernel_and_stride_set_the_per_frame_feature_width():
    model = make(kernel=(2, 3), stride=(1, 2))
    # (12 - 3) // 2 + 1 = 5 positions, 4 filters each, per frame
    assert model.get_layer("flatten").output.shape == (None, FRAMES, 5 * 4)
    assert model.input.name == "landmarks"


@pytest.mark.parametrize(
    "kwargs, named",
    [({"arch": "x-emo"}, "--arch"), ({"kernel": (2, 13)}, "kernel"), ({"kernel": (3, 1)}, "kernel"),
     ({"stride": (0, 1)}, "stride")],
    ids=["arch", "kernel-too-wide", "kernel-too-tall", "stride"],
)
def test_bad_architecture_arguments_are_refused(kwargs, named):
    from offline.training.model import build_model

    with pytest.raises(EdgeemoError, match=named):
        build_model(FRAMES, LANDMARKS, 4, 8, 8, **kwargs)


def test_a_saved_model_predicts_the_same_after_loading(tmp_path):
    import keras

    from offline.training.model import standardization

    x, _ = separable_windows(8, seed=4)
    model = make("r-emo", standardize=standardization(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    expected = model.predict(x[..., None], verbose=0)
    np.testing.assert_allclose(loaded.predict(x[..., None], verbose=0), expected, atol=1e-6)
