"""Rest-relative synthetic data (per-person calibration): each window judged against the rest the runtime's
estimator finds on a lead-in, the dataset contract's schema 2, and its export as a calibrated bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeemo.bundle import load_bundle
from edgeemo.calibration import REST_RELATIVE, RestSettings, canonical_face
from edgeemo.errors import EdgeemoError
from edgeemo.info import ABSOLUTE_BUNDLE
from offline.data.dataset import LandmarkDataset
from offline.synth import render
from offline.synth.generate import CAMERA_FPS, generate, lead_in_rest
from offline.synth.plan import Settings
from offline.synth.synthesize import synthesize

pytestmark = [pytest.mark.offline, pytest.mark.filterwarnings("ignore:IG completeness")]
SMALL = dict(sequences=60, subjects=12, test_fraction=0.25, frames=16, seed=3)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same small plan as absolute and as rest-relative data, each written to a file."""
    folder = tmp_path_factory.mktemp("calibrated")
    absolute = synthesize(out=folder / "absolute.npz", **SMALL)
    relative = synthesize(out=folder / "relative.npz", representation=REST_RELATIVE, **SMALL)
    return folder, absolute, relative


def rms_from_canonical(dataset: LandmarkDataset) -> np.ndarray:
    """Per window: the mean over frames of the RMS landmark distance from the canonical face."""
    faces = np.swapaxes(dataset.X, 2, 3)  # [N, P, 468, 2]
    return np.sqrt(((faces - canonical_face()) ** 2).sum(-1).mean(-1)).mean(-1)


def test_absolute_data_is_unchanged_by_default():
    # Figures of this plan's data from before the representation existed: the default makes the same arrays.
    X = generate(Settings(sequences=12, subjects=4, test_fraction=0.25, seed=5), progress=False).X.astype(np.float64)
    assert X.shape == (48, 16, 2, 468)
    np.testing.assert_allclose([X.sum(), (X ** 2).sum(), X[7, 3, 1, 100], X[40, 15, 0, 300]],
                               [364463.7589462839, 216076.6807906242, 0.47022986, 0.8241514], rtol=1e-6)


def test_meta_and_schema_versions(both):
    folder, absolute, relative = both
    assert "representation" not in absolute.meta and absolute.representation == "absolute"
    loaded = LandmarkDataset.load(folder / "relative.npz")
    assert loaded.representation == REST_RELATIVE and loaded.meta["settings"]["representation"] == REST_RELATIVE
    assert loaded.meta["rest_estimator"] == RestSettings().as_dict()
    assert RestSettings.from_dict(loaded.meta["rest_estimator"]) == RestSettings()
    for name, version in (("absolute.npz", 1), ("relative.npz", 2)):  # absolute stays readable by older readers
        with np.load(folder / name) as saved:
            assert int(saved["schema_version"]) == version, name
    # Same plan: the same windows, people and splits.
    for field in ("y", "subject", "segment", "split"):
        np.testing.assert_array_equal(getattr(absolute, field), getattr(relative, field))


def test_neutral_windows_lie_near_the_canonical_face_whoever_the_person_is(both):
    _, absolute, relative = both
    neutral = absolute.segment == "neutral"
    far_absolute, far_relative = np.median(rms_from_canonical(absolute)[neutral]), np.median(
        rms_from_canonical(relative)[neutral])
    assert far_relative < 0.5 * far_absolute, (far_relative, far_absolute)  # identity removed (0.011 vs 0.036)
    assert far_relative > 0.002  # but not the canonical face itself: jitter, head motion, turns, the estimate's error


def test_the_rest_is_the_estimators_on_jittered_frames_not_the_true_face():
    rng = np.random.default_rng(0)
    true = canonical_face()
    frames = true + render.tracker_jitter(rng, 60, 468)  # two seconds of a still face, as normalised
    rest, how = lead_in_rest(frames.astype(np.float32))
    assert how == "auto"  # the bootstrap: the first second, still and never vetoed offline
    np.testing.assert_allclose(rest, np.median(frames[: int(CAMERA_FPS) + 1], axis=0), atol=1e-6)
    error = float(np.sqrt(((rest - true) ** 2).sum(-1).mean()))
    assert 1e-4 < error < 0.005  # jitter-sized, not zero
    # A face never still for a second: set now, at the lead-in's last frame (its last second).
    moving = true + 0.05 * np.sin(np.arange(60) / 2.0)[:, None, None]
    rest, how = lead_in_rest(moving.astype(np.float32))
    assert how == "set"
    np.testing.assert_allclose(rest, np.median(moving[-int(CAMERA_FPS) - 1:], axis=0), atol=1e-6)


def test_rest_relative_data_is_checked(both):
    folder, _, relative = both
    meta = dict(relative.meta)
    del meta["rest_estimator"]
    with pytest.raises(EdgeemoError, match="meta rest_estimator is missing"):
        LandmarkDataset(relative.X, relative.y, relative.subject, relative.source, relative.segment,
                        relative.split, meta).validate()
    with pytest.raises(EdgeemoError, match="meta representation is 'relative'"):
        LandmarkDataset(relative.X, relative.y, relative.subject, relative.source, relative.segment,
                        relative.split, dict(meta, representation="relative")).validate()
    with np.load(folder / "relative.npz") as saved:  # a rest-relative file claiming version 1
        arrays = {k: saved[k] for k in saved.files}
    np.savez(folder / "claims1.npz", **dict(arrays, schema_version=np.array(1)))
    with pytest.raises(EdgeemoError, match="claims1.npz: meta representation rest-relative/v1 needs schema_version 2"):
        LandmarkDataset.load(folder / "claims1.npz")


def test_the_cli_makes_rest_relative_data(tmp_path, capsys):
    from edgeemo.cli import main

    out = tmp_path / "d.npz"
    assert main(["data", "synth", "--out", str(out), "--sequences", "6", "--subjects", "3", "--windows", "neutral",
                 "--representation", REST_RELATIVE]) == 0
    assert LandmarkDataset.load(out).representation == REST_RELATIVE
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(out), "--representation", "relative"])
    assert "--representation: invalid choice" in capsys.readouterr().err


def test_export_refuses_a_missing_or_wrong_uncalibrated_bundle(both, tmp_path):
    from offline.export.export import uncalibrated_bundle
    from tests.onnx_bundles import make_linear_bundle

    folder, absolute, relative = both
    with pytest.raises(EdgeemoError, match=r"^--uncalibrated: .*relative\.npz holds rest-relative/v1 faces; .*"
                                           r"--uncalibrated PATH"):
        uncalibrated_bundle(relative, folder / "relative.npz", None)
    with pytest.raises(EdgeemoError, match=r"^--uncalibrated: .*absolute\.npz holds absolute faces"):
        uncalibrated_bundle(absolute, folder / "absolute.npz", ABSOLUTE_BUNDLE)
    make_linear_bundle(tmp_path / "short", {e: [1, 2, 3] for e in json.loads(
        (ABSOLUTE_BUNDLE / "manifest.json").read_text())["emotions"]}, frames=4)
    with pytest.raises(EdgeemoError, match=r"^--uncalibrated: .*short has windows of 4 frames, stride 2 at 30 fps; "
                                           r"this export's are 16 frames, stride 2 at 30 fps$"):
        uncalibrated_bundle(relative, folder / "relative.npz", tmp_path / "short")
    assert uncalibrated_bundle(relative, folder / "relative.npz", ABSOLUTE_BUNDLE).bundle_id == "edgeemo-default-synth-k64"


def test_export_round_trip_of_a_rest_relative_run(both, tmp_path):
    from offline.export.export import export_bundle
    from offline.training.train import train_run
    from offline.training.train_config import load_settings, with_threads

    folder, _, _ = both
    data, run = folder / "relative.npz", tmp_path / "run"
    train_run(data, run, ks=(468,), archs=("t-emo",), baselines=False,
              settings=with_threads(load_settings(quick=True), 1), progress=False)
    with pytest.raises(EdgeemoError, match="^--uncalibrated: "):
        export_bundle(run, data, tmp_path / "refused", k=468, progress=False)
    assert not (tmp_path / "refused").exists()
    bundle = export_bundle(run, data, tmp_path / "bundle", k=468, uncalibrated=ABSOLUTE_BUNDLE, progress=False)
    again = load_bundle(tmp_path / "bundle")
    for b in (bundle, again):
        assert b.calibrated and b.representation == REST_RELATIVE and b.rest_settings == RestSettings()
        assert b.uncalibrated.bundle_id == "edgeemo-default-synth-k64" and not b.uncalibrated.calibrated
        assert b.streaming is not None and b.uncalibrated.streaming is not None  # both pairs, as the default has
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["schema_version"] == 2 and manifest["uncalibrated"] == "uncalibrated"
    assert manifest["rest_estimator"] == RestSettings().as_dict()
    assert manifest["training_data"]["representation"] == REST_RELATIVE
    assert manifest["streaming"]["keras_parity_max_abs_difference"] <= 1e-4
    shipped = {p.name: p.read_bytes() for p in ABSOLUTE_BUNDLE.iterdir()}
    assert {p.name: p.read_bytes() for p in (tmp_path / "bundle" / "uncalibrated").iterdir()} == shipped
    with pytest.raises(EdgeemoError, match="^--uncalibrated: .*bundle is a calibrated bundle"):
        export_bundle(run, data, tmp_path / "other", k=468, uncalibrated=tmp_path / "bundle", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "run"]
