"""Model bundle loading and checking, and the six-model classifier, on real ONNX files."""

import json

import numpy as np
import pytest

from edgeemo.bundle import MANIFEST, load_bundle
from edgeemo.classifier import EmotionClassifier, fuse
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from tests.onnx_bundles import make_linear_bundle

LANDMARKS = {e: [(7 * i + 3 * j) % 468 for j in range(5 + i)] for i, e in enumerate(EMOTIONS)}


@pytest.fixture()
def bundle_dir(tmp_path):
    folder = tmp_path / "bundle"
    make_linear_bundle(folder, LANDMARKS)
    return folder


def _edit_manifest(folder, change):
    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_classifier_scores_equal_a_numpy_reference(tmp_path):
    folder = tmp_path / "b"
    weights = make_linear_bundle(folder, LANDMARKS, frames=4)
    bundle = load_bundle(folder)
    classifier = EmotionClassifier(bundle)
    union = bundle.landmarks_union
    window = np.random.default_rng(1).random((4, 2, len(union)), dtype=np.float32)
    scores = classifier.classify(window).copy()
    full = np.zeros((4, 2, 468), np.float32)
    full[:, :, union] = window
    for i, emotion in enumerate(EMOTIONS):
        logits = full[:, :, LANDMARKS[emotion]].reshape(-1) @ weights[emotion]
        expected = np.exp(logits[1]) / np.exp(logits).sum()
        assert scores[i] == pytest.approx(expected, abs=1e-5)


def test_union_holds_every_models_landmarks(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert set(bundle.landmarks_union) == set().union(*map(set, LANDMARKS.values()))
    assert "bundle test-linear" in bundle.summary()


def test_fusion_picks_the_highest_confident_emotion_or_neutral():
    thresholds = np.full(6, 0.5, np.float32)
    assert fuse(np.array([0.1, 0.2, 0.6, 0.9, 0.1, 0.0]), thresholds) == "happiness"
    assert fuse(np.array([0.1, 0.2, 0.4, 0.45, 0.1, 0.0]), thresholds) == "neutral"
    # A lower threshold lets a lower score through, but the highest passing score still wins.
    assert fuse(np.array([0.3, 0.0, 0.0, 0.4, 0.0, 0.0]), np.array([0.2, .5, .5, .5, .5, .5])) == "anger"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: f.joinpath("fear.onnx").write_bytes(f.joinpath("fear.onnx").read_bytes()[:-1] + b"\0"),
         r"fear\.onnx: SHA-256 differs"),
        (lambda f: f.joinpath("sadness.onnx").unlink(), r"sadness\.onnx: missing from the bundle"),
        (lambda f: _edit_manifest(f, lambda m: m["models"]["anger"]["landmarks"].__setitem__(0, 468)),
         r"models\.anger\.landmarks holds 468, outside 0\.\.467"),
        (lambda f: _edit_manifest(f, lambda m: m.__setitem__("schema_version", 3)),
         r"schema_version 3 is newer than this edgeemo reads \(2\)"),
        (lambda f: _edit_manifest(f, lambda m: m["models"]["surprise"].__setitem__("threshold", 1.5)),
         r"models\.surprise\.threshold is 1\.5"),
        (lambda f: _edit_manifest(f, lambda m: m.__setitem__("frames", 5)),
         r"anger\.onnx: input .* disagrees with the manifest"),
        (lambda f: _edit_manifest(f, lambda m: m["models"]["disgust"]["landmarks"].append(400)),
         r"disgust\.onnx: input .* disagrees with the manifest"),
        (lambda f: f.joinpath(MANIFEST).unlink(), r"manifest\.json: missing"),
        (lambda f: _edit_manifest(f, lambda m: m.__setitem__("emotions", list(reversed(EMOTIONS)))),
         r"field emotions"),
    ],
    ids=["changed-byte", "missing-file", "index-out-of-range", "newer-schema", "threshold", "frames", "k",
         "no-manifest", "emotion-order"],
)
def test_a_bad_bundle_is_refused_with_a_message_naming_the_problem(bundle_dir, damage, message):
    damage(bundle_dir)
    with pytest.raises(EdgeemoError, match=message) as info:
        load_bundle(bundle_dir)
    assert "\n" not in str(info.value)


def test_info_describes_a_bundle(bundle_dir, capsys):
    from edgeemo.cli import main

    assert main(["info", "--model", str(bundle_dir)]) == 0
    out = capsys.readouterr().out
    assert "test-linear" in out and "threshold 0.500" in out


def test_info_on_a_broken_bundle_names_the_problem(bundle_dir, capsys):
    from edgeemo.cli import main

    bundle_dir.joinpath("anger.onnx").write_bytes(b"x")
    assert main(["info", "--model", str(bundle_dir)]) == 2
    assert "anger.onnx: SHA-256 differs" in capsys.readouterr().err
