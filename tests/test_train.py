"""Training runs: subject-disjoint splits, refusal of bad data, landmark subsets, resuming a run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edgeemo.cli import main
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS, face_template
from offline.data.dataset import SEGMENTS, LandmarkDataset
from offline.data.splits import PARTS, make_split
from offline.training.run_folder import PREDICTION_KEYS, RunFolder
from offline.training.train import train_run
from offline.training.train_config import TRAIN_CONFIG, load_hyperparameters, load_settings

pytestmark = pytest.mark.offline

FRAMES = 4


def toy_dataset(subjects: int = 12, split: bool = False, seed: int = 0) -> LandmarkDataset:
    """Every subject shows every emotion once, in all four segments. Emotion e moves landmarks
    40e..40e+19 upwards (a separable signal); faces differ a little per subject; noise on top."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, FRAMES, dtype=np.float32)
    curves = {"onset": ramp, "apex": np.ones(FRAMES), "offset": ramp[::-1], "neutral": np.zeros(FRAMES)}
    faces = face_template().template.T + rng.normal(0, 0.01, (subjects, 2, N_LANDMARKS))
    X, y, subject, segment = [], [], [], []
    for s in range(subjects):
        for e in range(len(EMOTIONS)):
            move = np.zeros((2, N_LANDMARKS))
            move[1, 40 * e:40 * e + 20] = -0.03
            for name in SEGMENTS:
                X.append(faces[s] + curves[name][:, None, None] * move + rng.normal(0, 0.002, (FRAMES, 2, N_LANDMARKS)))
                y.append(-1 if name == "neutral" else e)
                subject.append(f"s{s:02d}")
                segment.append(name)
    subject = np.array(subject)
    test_subjects = subject < "s02"
    splits = np.where(test_subjects, "test", "train") if split else np.full(len(y), "")
    meta = {"P": FRAMES, "frame_stride": 1, "normalization": "toy", "extractor": "test"}
    return LandmarkDataset(np.array(X, np.float32), np.array(y), subject, np.full(len(y), "toy"),
                           np.array(segment), splits, meta)


@pytest.fixture(scope="module")
def dataset() -> LandmarkDataset:
    return toy_dataset()


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory, dataset):
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    dataset.save(path)
    return path


@pytest.fixture(scope="module")
def tiny_settings():
    """Quick mode on every subject, one thread."""
    settings = load_settings(quick=True)
    return dataclasses.replace(
        settings, train=dataclasses.replace(settings.train, subject_fraction=1.0),
        compute=dataclasses.replace(settings.compute, threads=1),
    )


def ranking_file(tmp_path, emotions: dict) -> str:
    path = tmp_path / "ranking.json"
    path.write_text(json.dumps({"emotions": emotions}))
    return str(path)


def subjects_of(dataset: LandmarkDataset, indices: np.ndarray) -> set[str]:
    return set(dataset.subject[indices].tolist())


@pytest.mark.parametrize("with_split", [False, True], ids=["drawn-test", "dataset-test"])
def test_no_subject_is_in_two_parts_of_any_split(with_split):
    data = toy_dataset(split=with_split)
    splits = [make_split(data, seed, 0.1, 0.15) for seed in range(5)]
    for split in splits:
        parts = [subjects_of(data, getattr(split, p)) for p in PARTS]
        assert all(parts), "every part has subjects"
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert sum(len(getattr(split, p)) for p in PARTS) == len(data)
    tests = {frozenset(subjects_of(data, s.test)) for s in splits}
    if with_split:
        assert tests == {frozenset({"s00", "s01"})}  # the dataset's test subjects, for every seed
    else:
        assert len(tests) > 1  # each seed draws its own test subjects


def test_training_windows_are_doubled_by_their_mirror_images(dataset):
    from edgeemo.face import mirror_points
    from offline.training.windows import SeedWindows

    split = make_split(dataset, 0, 0.1, 0.15)
    plain = SeedWindows.build(dataset, split, ("onset", "apex"), mirror=False)
    mirrored = SeedWindows.build(dataset, split, ("onset", "apex"), mirror=True)
    n = len(plain.train)
    assert set(plain.train.segment) == {"onset", "apex"} and len(mirrored.train) == 2 * n
    np.testing.assert_array_equal(mirrored.train.x[:n], plain.train.x)
    flipped = np.swapaxes(mirror_points(np.swapaxes(plain.train.x, -1, -2)), -1, -2)
    np.testing.assert_array_equal(mirrored.train.x[n:], flipped)
    np.testing.assert_array_equal(mirrored.train.labels("fear"), np.tile(plain.train.labels("fear"), 2))
    assert len(mirrored.val) == len(plain.val) and len(mirrored.test) == len(split.test)  # never mirrored


def _with(data: LandmarkDataset, **changes) -> LandmarkDataset:
    fields = {f: getattr(data, f) for f in ("X", "y", "subject", "source", "segment", "split", "meta")}
    fields.update(changes)
    return LandmarkDataset(**fields)


def _nan_x(data):
    x = data.X.copy()
    x[3, 1, 0, 7] = np.nan
    return x


BAD_INPUTS = {
    "wrong-shape": (lambda d, tmp: {"data": _with(d, X=d.X[..., :400])}, "field X"),
    "nan": (lambda d, tmp: {"data": _with(d, X=_nan_x(d))}, "NaN"),
    "one-class-only": (  # no fear left: every fear window becomes anger
        lambda d, tmp: {"data": _with(d, y=np.where(d.y == 2, 0, d.y))}, "field y gives fear no positive",
    ),
    "unknown-emotion-in-ranking": (
        lambda d, tmp: {"data": d, "ks": (8,), "ranking": ranking_file(tmp, {"angry": list(range(468))})},
        "emotions.angry",
    ),
    "k-larger-than-ranking": (
        lambda d, tmp: {"data": d, "ks": (32,), "ranking": ranking_file(tmp, {e: list(range(20)) for e in EMOTIONS})},
        "--k 32",
    ),
    "k-without-ranking": (lambda d, tmp: {"data": d, "ks": (32,)}, "--k 32"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_refused_with_one_line_naming_it(case, dataset, tiny_settings, tmp_path):
    make, named = BAD_INPUTS[case]
    arguments = make(dataset, tmp_path)
    with pytest.raises(EdgeemoError, match=named) as refused:
        train_run(arguments.pop("data"), tmp_path / "run", settings=tiny_settings, progress=False, **arguments)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "run").exists()  # nothing written: the same --out works once the input is fixed


def test_top_k_landmarks_of_the_ranking_feed_the_model(dataset, tiny_settings, tmp_path):
    order = list(range(N_LANDMARKS))[::-1]  # best first: 467, 466, ...
    ranking = ranking_file(tmp_path, {"surprise": order})
    train_run(dataset, tmp_path / "run", archs=("t-emo",), ks=(8,), ranking=ranking, emotions=("surprise",),
              baselines=False, settings=tiny_settings, progress=False)
    run = RunFolder(tmp_path / "run")
    (job,) = run.finished_jobs()
    assert run.read_result(job)["landmarks"] == sorted(order[:8])
    assert run.load_model(job).input.shape == (None, FRAMES, 2, 8, 1)


def test_a_resumed_run_with_other_settings_is_refused(dataset, tiny_settings, tmp_path):
    train_run(dataset, tmp_path / "run", archs=(), emotions=("anger",), settings=tiny_settings, progress=False)
    other = dataclasses.replace(tiny_settings, train=dataclasses.replace(tiny_settings.train, learning_rate=1e-2))
    with pytest.raises(EdgeemoError, match="config.json: this run was made with other settings"):
        train_run(dataset, tmp_path / "run", archs=(), emotions=("anger",), settings=other, progress=False)


def test_train_command_writes_the_run_and_resumes_without_training_again(dataset_file, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["train", "--data", str(dataset_file), "--out", str(run_dir), "--quick", "--arch", "both",
            "--emotions", "anger,fear", "--threads", "1", "--workers", "1"]  # Ray's own test: test_ray_jobs
    assert main(argv) == 0
    assert "8 models trained, 0 already done" in capsys.readouterr().out

    run = RunFolder(run_dir)
    jobs = run.finished_jobs()
    assert sorted({j.model for j in jobs}) == ["r-emo", "svm-linear", "svm-rbf", "t-emo"]
    assert {j.emotion for j in jobs} == {"anger", "fear"} and {j.k for j in jobs} == {N_LANDMARKS}
    for job in jobs:
        assert set(PREDICTION_KEYS) <= set(run.read_predictions(job))
        assert run.model_path(job).is_file() == (job.model in ("t-emo", "r-emo"))
    split = json.loads(run.split_path(0).read_text())
    assert not set(split["subjects"]["train"]) & set(split["subjects"]["test"])
    data = LandmarkDataset.load(dataset_file)  # quick mode's subject sample keeps indices into the file
    assert all(set(data.subject[split["indices"][p]]) == set(split["subjects"][p]) for p in PARTS)
    assert len(split["subjects"]["train"] + split["subjects"]["val"] + split["subjects"]["test"]) < 12
    stamps = {job: run.result_path(job).stat().st_mtime_ns for job in jobs}

    assert main(argv) == 0
    assert "0 models trained, 8 already done" in capsys.readouterr().out
    assert {job: run.result_path(job).stat().st_mtime_ns for job in jobs} == stamps


def test_grid_search_is_saved_used_and_resumed(dataset, tiny_settings, tmp_path):
    arguments = dict(archs=("r-emo",), emotions=("happiness",), baselines=False, grid=True,
                     settings=tiny_settings, progress=False)
    train_run(dataset, tmp_path / "run", **arguments)
    run = RunFolder(tmp_path / "run")
    record = json.loads(run.grid_path(N_LANDMARKS, "happiness").read_text())
    assert len(record["trials"]) == 2  # quick grid: F 4, Q 4 or 8, R 8
    (job,) = run.finished_jobs()
    used = run.read_result(job)["hyperparameters"]
    assert used == {**record["best"], "from": "grid"}
    assert load_hyperparameters(run.grid_best_path)[N_LANDMARKS]["happiness"]._asdict() == record["best"]
    stamp = run.grid_path(N_LANDMARKS, "happiness").stat().st_mtime_ns

    assert train_run(dataset, tmp_path / "run", **arguments).trained == []
    assert run.grid_path(N_LANDMARKS, "happiness").stat().st_mtime_ns == stamp


def test_a_settings_file_with_a_misspelt_key_is_refused(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(TRAIN_CONFIG.read_text().replace("patience = 10", "patiense = 10"))
    with pytest.raises(EdgeemoError, match=r"train.toml: \[train\]: unknown setting 'patiense'"):
        load_settings(path)


@pytest.mark.parametrize("kind, kernel", [("svm-linear", "linear"), ("svm-rbf", "rbf")], ids=["linear", "rbf"])
def test_baseline_svms_equal_scikit_learns_svc(dataset, kind, kernel):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from offline.training.baselines import SvmFeatures, fit_svm, svm_scores

    x, labels = dataset.X[:, :, :, :60], (dataset.y == 4).astype(int)
    features = SvmFeatures(x[::2], test=x[1::2])
    scores = svm_scores(fit_svm(kind, features, labels[::2], c=1.0, seed=0), kind, features, "test")
    svc = SVC(kernel=kernel, gamma="scale", C=1.0, class_weight="balanced")
    reference = make_pipeline(StandardScaler(), svc).fit(x[::2].reshape(len(x[::2]), -1), labels[::2])
    expected = 1 / (1 + np.exp(-reference.decision_function(x[1::2].reshape(len(x[1::2]), -1))))
    np.testing.assert_allclose(scores, expected, atol=1e-3)
