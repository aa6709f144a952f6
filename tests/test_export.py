"""Explain, select landmarks and export a trained run: the bundle the runtime loads without TensorFlow."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeemo.bundle import load_bundle
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError

pytestmark = [pytest.mark.offline, pytest.mark.filterwarnings("ignore:IG completeness")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A quick T-EMO run on a small built-in dataset: 468 landmarks, its IG ranking, then K = 16."""
    from offline.explain.explain import explain_run, ranking_path
    from offline.synth.synthesize import synthesize
    from offline.training.run_folder import RunFolder
    from offline.training.train import train_run
    from offline.training.train_config import load_settings, with_threads

    work = tmp_path_factory.mktemp("export")
    data = work / "synth.npz"
    synthesize(out=data, sequences=60, subjects=20, seed=3)
    settings = with_threads(load_settings(quick=True), 1)
    common = dict(archs=("t-emo",), baselines=False, settings=settings, progress=False)
    train_run(data, work / "run", ks=(468,), **common)
    ranking = explain_run(work / "run", data, steps=16, progress=False)
    train_run(data, work / "run", ks=(16,), ranking=ranking_path(RunFolder(work / "run"), "t-emo"), **common)
    return work, data, ranking


def test_explain_ranks_all_468_landmarks_per_emotion_and_checks_completeness(trained):
    work, _, ranking = trained
    for emotion in EMOTIONS:
        assert sorted(ranking["emotions"][emotion]) == list(range(468))
        assert ranking["completeness"][emotion]["samples"] > 0
        assert 0 <= ranking["completeness"][emotion]["median"] <= ranking["completeness"][emotion]["worst"]
    scores = np.load(work / "run" / "explain" / "t-emo" / "scores.npz")
    assert scores["scores"].shape == (6, 468) and scores["per_baseline"].shape == (6, 1, 468)  # one neutral baseline per sample
    first = ranking["emotions"]["happiness"][0]
    assert scores["scores"][3, first] == scores["scores"][3].max()


def test_round_trip_onnx_scores_in_a_process_without_tensorflow_equal_keras(trained, tmp_path):
    from offline.export.export import export_bundle
    from offline.training.run_folder import Job, RunFolder

    work, data, _ = trained
    bundle = export_bundle(work / "run", data, tmp_path / "bundle", k=16, progress=False)
    assert all(len(m.landmarks) == 16 for m in bundle.models)
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    # Keras scores of each emotion's exported model on a few windows, here (TensorFlow loaded).
    from offline.data.dataset import LandmarkDataset

    dataset = LandmarkDataset.load(data)
    windows = dataset.X[:5]
    run = RunFolder(work / "run")
    keras_scores = np.stack([
        np.asarray(run.load_model(Job("t-emo", 16, e, manifest["models"][e]["seed"]))(
            windows[..., manifest["models"][e]["landmarks"]][..., None], training=False))[:, 1]
        for e in EMOTIONS], axis=1)
    np.save(tmp_path / "windows.npy", windows)
    probe = f"""
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "offline"):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NoTensorFlow())
import numpy as np
from edgeemo.bundle import load_bundle
from edgeemo.classifier import EmotionClassifier
bundle = load_bundle({str(tmp_path / "bundle")!r})
classifier = EmotionClassifier(bundle)
windows = np.load({str(tmp_path / "windows.npy")!r})[..., bundle.landmarks_union]
np.save({str(tmp_path / "onnx.npy")!r}, np.stack([classifier.classify(w).copy() for w in windows]))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
    np.testing.assert_allclose(np.load(tmp_path / "onnx.npy"), keras_scores, atol=1e-4)


def test_thresholds_come_from_validation_and_sit_inside_0_1(trained, tmp_path):
    from offline.export.export import choose_threshold, export_bundle

    work, data, _ = trained
    bundle = export_bundle(work / "run", data, tmp_path / "b", k=16, progress=False)
    assert all(0.05 <= m.threshold <= 0.95 for m in bundle.models)
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert 0.3 < choose_threshold(labels, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])) < 0.7
    assert choose_threshold(labels, np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])) < 0.1


def test_export_writes_the_fused_streaming_pair_checked_against_keras(trained, tmp_path):
    from offline.export.export import export_bundle

    work, data, _ = trained
    bundle = export_bundle(work / "run", data, tmp_path / "b", k=16, progress=False)
    assert bundle.streaming is not None
    assert bundle.manifest["streaming"]["keras_parity_max_abs_difference"] <= 1e-4
    assert bundle.manifest["streaming"]["parity_max_abs_difference"] <= 1e-4
    assert bundle.frame_interval_s == pytest.approx(1 / 30) and bundle.manifest["window_s"] == pytest.approx(1.0)


def test_one_fixed_threshold_for_every_emotion(trained, tmp_path, capsys):
    from edgeemo.cli import main

    work, data, _ = trained
    assert main(["export", str(work / "run"), "--data", str(data), "--k", "16", "--out", str(tmp_path / "b"),
                 "--threshold", "0.5"]) == 0
    assert [m.threshold for m in load_bundle(tmp_path / "b").models] == [0.5] * 6
    with pytest.raises(SystemExit) as exited:
        main(["export", str(work / "run"), "--data", str(data), "--k", "16", "--out", str(tmp_path / "c"),
              "--threshold", "1.5"])
    assert exited.value.code == 2 and "--threshold: expected a number between 0 and 1, got '1.5'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_export_refuses_a_k_not_trained_and_leaves_an_earlier_bundle(trained, tmp_path):
    from offline.export.export import export_bundle

    work, data, _ = trained
    out = tmp_path / "bundle"
    export_bundle(work / "run", data, out, k=16, progress=False)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(EdgeemoError, match="no finished t-emo model at K=32"):
        export_bundle(work / "run", data, out, k=32, progress=False)
    assert (out / "manifest.json").read_bytes() == before
    load_bundle(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_parity_check_refuses_an_onnx_file_that_disagrees(trained, tmp_path):
    from offline.export.onnx_export import check_parity, export_onnx
    from offline.training.run_folder import Job, RunFolder

    work, _, _ = trained
    run = RunFolder(work / "run")
    model = run.load_model(Job("t-emo", 16, "anger", 0))
    path = export_onnx(model, tmp_path / "anger.onnx", 16, 16)
    x = np.random.default_rng(0).random((4, 16, 2, 16, 1), dtype=np.float32)
    assert check_parity(model, path, x) <= 1e-4
    other = run.load_model(Job("t-emo", 16, "happiness", 0))
    with pytest.raises(EdgeemoError, match="ONNX and Keras outputs differ"):
        check_parity(other, path, x)
