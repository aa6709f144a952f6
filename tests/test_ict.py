"""ICT FaceKit at MediaPipe's landmarks: the derived file, its symmetry, its people, its smile, the synth option.

The derived file is offline/resources/ict/ict_landmarks.npz (scripts/build_ict_landmarks.py wrote it from a
checkout of ICT FaceKit, which the tests do not need); docs/action-units.md gives the measured numbers.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from edgeemo import cli
from edgeemo.errors import EdgeemoError
from edgeemo.normalize import normalize_landmarks
from offline.data.dataset import LandmarkDataset
from offline.synth.action_units import ACTION_UNITS, action_unit_fields
from offline.synth.calibration import ict_smile_report
from offline.synth.faces import real_faces
from offline.synth.fields import mirror_field
from offline.synth.generate import generate
from offline.synth.ict import AU_BLENDSHAPES, KEPT_FITTED, ict_action_unit_fields, ict_identities, ict_landmarks
from offline.synth.plan import Settings
from offline.synth.render import IMAGE_HEIGHT, IMAGE_WIDTH
from offline.synth.smile_fit import normalized
from offline.synth.truth import FACE_PX, ground_truth

pytestmark = pytest.mark.offline
SIDED = sorted({n[:-2] for n in ict_landmarks().expression_names if n.endswith(("_L", "_R"))})
MIDLINE = [n for n in ict_landmarks().expression_names if not n.endswith(("_L", "_R"))]


def relative_asymmetry(a: np.ndarray, b: np.ndarray) -> float:
    """How far field a [468, 3] is from the mirror image of field b, relative to a's size."""
    return float(np.linalg.norm(a - mirror_field(b)) / np.linalg.norm(a))


def test_derived_file_shapes_and_dtypes():
    with np.load(resources.files("offline") / "resources" / "ict" / "ict_landmarks.npz") as data:
        assert data["expressions"].shape == (53, 468, 3) and data["expressions"].dtype == np.float32
        assert data["identities"].shape == (100, 468, 3) and data["identities"].dtype == np.float32
        assert data["neutral"].shape == (468, 3)
        assert data["vertices"].shape == (468, 3) and data["barycentric"].shape == (468, 3)
        np.testing.assert_allclose(data["barycentric"].sum(1), 1.0, atol=1e-5)
        assert (data["barycentric"] >= -1e-6).all()
        assert data["vertices"].max() < 9409  # ICT's face area only
        assert np.median(data["attach_distance"]) < 0.01  # face heights: the warped surface meets the landmarks
    assert all(f"{shape}_L" in ict_landmarks().expression_names or shape in MIDLINE
               for shape in AU_BLENDSHAPES.values())


@pytest.mark.parametrize("shape", MIDLINE)
def test_midline_blendshapes_map_onto_themselves(shape):
    # Measured: at most 0.3 % for jawOpen, mouthFunnel, mouthPucker ...; jawLeft/mouthLeft are one-sided by design.
    field = ict_landmarks().expression(shape)
    if shape in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):
        other = ict_landmarks().expression(shape.replace("Left", "Right") if "Left" in shape
                                           else shape.replace("Right", "Left"))
        assert relative_asymmetry(field, other) < 0.03
    else:
        assert relative_asymmetry(field, field) < 0.03


@pytest.mark.parametrize("shape", SIDED)
def test_left_and_right_blendshapes_are_mirror_pairs(shape):
    ict = ict_landmarks()
    left, right = ict.expression(f"{shape}_L"), ict.expression(f"{shape}_R")
    assert relative_asymmetry(left, right) < 0.03
    if np.linalg.norm(left) > 0.01 and not shape.startswith("eyeLook"):  # _L is the subject's left: x > 0
        size = np.linalg.norm(left, axis=1)
        assert (size * ict.neutral[:, 0]).sum() > 0


def test_lips_and_lids_attach_to_their_own_side():
    ict = ict_landmarks()
    jaw, blink = ict.expression("jawOpen"), ict.expression("eyeBlink_R") + ict.expression("eyeBlink_L")
    assert jaw[14, 1] > 0.1 and abs(jaw[13, 1]) < 0.03  # the lower inner lip drops, the upper stays
    assert blink[159, 1] > 0.03 and abs(blink[145, 1]) < 0.01 and blink[386, 1] > 0.03


def frontal_normalized(faces: np.ndarray) -> np.ndarray:
    centre = np.array([IMAGE_WIDTH / 2, IMAGE_HEIGHT / 2])
    return normalize_landmarks(centre + FACE_PX * faces[..., :2]).astype(np.float64)


def test_ict_people_look_like_real_faces_to_the_runtime():
    london = normalized(real_faces().neutral)  # [50, 468, 2], from pixels as the runtime does
    mean = london.mean(axis=0)
    own = [np.sqrt(((london[i] - np.delete(london, i, 0).mean(0)) ** 2).sum(-1).mean()) for i in range(len(london))]
    people = frontal_normalized(ict_identities(np.random.default_rng(0), 200))
    distance = np.sqrt(((people - mean) ** 2).sum(-1).mean(-1))
    spread = np.sqrt(people.var(0).sum(-1).mean() / london.var(0).sum(-1).mean())
    # Measured: real faces lie 0.016 (median) to 0.036 (max) from the others' mean; ICT people 0.026 to 0.035,
    # spread 0.8 of the real one. A wrong correspondence (e.g. a swapped side) puts them at 0.1 or more.
    assert np.percentile(distance, 95) <= max(own) and np.median(distance) < 2 * np.median(own)
    assert 0.5 < spread < 1.5


def test_ict_smile_against_real_smiles_beside_the_fitted_one():
    report = ict_smile_report()
    ict, with_jaw, fitted = report["ict_au6_au12"], report["ict_au6_au12_au26_fitted"], report["fitted_smile"]
    # Measured on the 25 held-out faces: ICT AU6+AU12 cosine 0.80 (direction error 16 deg; real London smiles
    # part the lips), with a fitted share of jawOpen 0.92 (7 deg); the fitted smile 0.93 (5 deg), kept.
    assert ict["mean_field_cosine"] >= 0.75 and with_jaw["mean_field_cosine"] >= 0.88
    assert 0.8 < ict["magnitude_ratio"] < 1.5  # GAIN makes ICT's smile about as large as the real one
    assert fitted["mean_field_cosine"] >= with_jaw["mean_field_cosine"] >= ict["mean_field_cosine"]


@pytest.mark.parametrize("code", ACTION_UNITS)
def test_ict_unit_fields_symmetric_and_fitted_smile_kept(code):
    units, hand = ict_action_unit_fields(), action_unit_fields()
    right, left = units.fields[units.index(code)].astype(np.float64)
    assert relative_asymmetry(left, right) < 0.03
    assert np.abs(right + left).max() > 0.005
    if code in KEPT_FITTED:
        np.testing.assert_array_equal(units.fields[units.index(code)], hand.fields[hand.index(code)])


def test_ict_ground_truth_differs_from_hand_but_keeps_the_smile():
    ict, hand = ground_truth("ict")["emotions"], ground_truth("hand")["emotions"]
    assert ict["happiness"]["landmarks"] == hand["happiness"]["landmarks"]
    assert any(ict[e]["landmarks"] != hand[e]["landmarks"] for e in ("anger", "disgust", "fear", "surprise"))
    assert all(20 <= len(v["landmarks"]) <= 300 for v in ict.values())


def test_generator_option_makes_a_valid_dataset(tmp_path):
    settings = Settings(sequences=30, subjects=8, test_fraction=0.25, seed=1, action_units="ict")
    dataset = generate(settings, progress=False)
    dataset.validate("ict synthetic dataset")
    assert dataset.X.shape[1:] == (16, 2, 468) and np.isfinite(dataset.X).all()
    assert dataset.meta["settings"]["action_units"] == "ict" and "ICT FaceKit" in dataset.meta["identities"]
    hand = generate(Settings(sequences=30, subjects=8, test_fraction=0.25, seed=1), progress=False)
    assert "action_units" not in hand.meta["settings"]  # the default's metadata is as before the option
    assert not np.allclose(hand.X, dataset.X)


def test_cli_option_and_bad_value(tmp_path, capsys):
    out = tmp_path / "ict.npz"
    assert cli.main(["data", "synth", "--out", str(out), "--sequences", "12", "--subjects", "6",
                     "--action-units", "ict"]) == 0
    loaded = LandmarkDataset.load(out)
    assert loaded.meta["settings"]["action_units"] == "ict"
    truth = json.loads((tmp_path / "ict.truth.json").read_text())
    assert truth["ict_smile_calibration"]["kept"].startswith("fitted_smile")
    with pytest.raises(SystemExit) as bad:
        cli.main(["data", "synth", "--out", str(out), "--action-units", "nope"])
    assert bad.value.code == 2
    with pytest.raises(EdgeemoError, match="--action-units"):
        Settings(action_units="nope").check()
