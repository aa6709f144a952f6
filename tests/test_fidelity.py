"""Fidelity of a landmark ranking to known ground truth: precision@K, the random reference, saliency rankings."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.offline
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgeemo.emotions import EMOTIONS  # noqa: E402
from edgeemo.errors import EdgeemoError  # noqa: E402
from edgeemo.face import N_LANDMARKS  # noqa: E402
from offline.data.dataset import LandmarkDataset  # noqa: E402
from offline.explain.fidelity import (  # noqa: E402
    fidelity_path, load_truth, precision_at_k, random_precision, saliency_scores, truth_file, write_fidelity,
)
from offline.data.splits import Split  # noqa: E402
from offline.training.run_folder import PREDICTION_KEYS, Job, RunFolder  # noqa: E402

FRAMES = 3


def truth_first(truth: np.ndarray) -> np.ndarray:
    """A ranking with the truth landmarks first (in their order), then the others."""
    return np.concatenate([truth, np.setdiff1d(np.arange(N_LANDMARKS), truth)])


def linear_model(frames: int, landmarks: int, weights: np.ndarray):
    """softmax(W . x): ``weights`` [frames, 2, landmarks] push P(class 1) up, class 0 gets none.
    Then dP1/dx = P1 (1 - P1) W, so |dP1/dx| summed per landmark is P1 (1 - P1) sum |W| over frames and x, y."""
    import keras

    inputs = keras.Input((frames, 2, landmarks, 1))
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((frames * 2 * landmarks, 2), np.float32)
    kernel[:, 1] = weights.reshape(-1)
    dense.set_weights([kernel, np.zeros(2, np.float32)])
    return model


def test_precision_at_k_of_hand_made_rankings():
    truth = np.arange(100, 150)  # 50 landmarks
    perfect = truth_first(truth)
    np.testing.assert_allclose(precision_at_k(perfect, truth, (16, 32, 50, 64, 128)), [1, 1, 1, 50 / 64, 50 / 128])
    np.testing.assert_allclose(precision_at_k(perfect[::-1], truth, (16, 128, 418)), [0, 0, 0])
    others = np.setdiff1d(np.arange(N_LANDMARKS), truth)
    alternating = np.concatenate([np.stack([truth, others[:50]], axis=1).ravel(), others[50:]])
    np.testing.assert_allclose(precision_at_k(alternating, truth, (16, 64)), [0.5, 0.5])


def test_random_rankings_find_the_truth_at_its_share_of_the_468():
    rng = np.random.default_rng(0)
    truth = rng.choice(N_LANDMARKS, 82, replace=False)
    rankings = rng.permuted(np.tile(np.arange(N_LANDMARKS), (2000, 1)), axis=1)
    mean = precision_at_k(rankings, truth, (16, 32, 64, 128)).mean(axis=0)
    assert random_precision(82) == pytest.approx(82 / 468)
    np.testing.assert_allclose(mean, random_precision(82), atol=0.01)


def test_saliency_ranks_the_landmark_that_drives_the_model_first():
    rng = np.random.default_rng(1)
    landmarks, driver = 12, 7
    weights = rng.normal(0, 0.05, (FRAMES, 2, landmarks)).astype(np.float32)
    weights[:, :, driver] = 2.0
    model = linear_model(FRAMES, landmarks, weights)
    x = rng.normal(0, 0.3, (9, FRAMES, 2, landmarks)).astype(np.float32)

    scores = saliency_scores(model, x)
    assert scores.shape == (landmarks,)
    assert np.argmax(scores) == driver
    p = np.asarray(model(x[..., None]))[:, 1]
    expected = np.mean(p * (1 - p)) * np.abs(weights).sum(axis=(0, 1))
    np.testing.assert_allclose(scores, expected, rtol=1e-4)
    np.testing.assert_allclose(saliency_scores(model, x[..., None]), scores)  # the model's own 5-D input too


@pytest.fixture
def hand_made_run(tmp_path):
    """A run whose 468-landmark "models" of anger and happiness are linear in the truth landmarks of their
    emotion, with a split, an explain ranking (anger: truth first; happiness: truth last) and a truth file."""
    rng = np.random.default_rng(2)
    truth = {e: np.sort(rng.choice(N_LANDMARKS, 40 + 10 * i, replace=False)) for i, e in enumerate(EMOTIONS)}
    n = 4 * len(EMOTIONS)
    y = np.tile(np.arange(len(EMOTIONS)), 4)
    dataset = LandmarkDataset(
        rng.normal(0.5, 0.1, (n, FRAMES, 2, N_LANDMARKS)), y, np.repeat([f"s{i}" for i in range(4)], len(EMOTIONS)),
        np.full(n, "hand"), np.full(n, "onset"), np.full(n, ""),
        {"P": FRAMES, "frame_stride": 1, "normalization": "hand", "extractor": "test", "truth": "hand.truth.json"},
    )
    dataset.save(tmp_path / "hand.npz")
    (tmp_path / "hand.truth.json").write_text(json.dumps(
        {"emotions": {e: {"landmarks": truth[e].tolist()} for e in EMOTIONS}}))
    run = RunFolder(tmp_path / "run")
    run.write_json(run.split_path(0), Split(0, np.arange(n), np.arange(0), np.arange(0)).to_json(dataset))
    for emotion in ("anger", "happiness"):
        weights = np.zeros((FRAMES, 2, N_LANDMARKS), np.float32)
        size = (FRAMES, 2, len(truth[emotion]))  # signed and small, so that the softmax does not saturate
        weights[:, :, truth[emotion]] = rng.choice([-1, 1], size) * rng.uniform(0.05, 0.1, size)
        job = Job("t-emo", N_LANDMARKS, emotion, 0)
        run.save_model(job, linear_model(FRAMES, N_LANDMARKS, weights))
        run.write_result(job, {"val_metrics": {"balanced_accuracy": 0.9}},
                         {key: np.zeros(0) for key in PREDICTION_KEYS})
    ranking = {"anger": truth_first(truth["anger"]).tolist(),
               "happiness": truth_first(truth["happiness"])[::-1].tolist()}
    run.write_json(run.root / "explain" / "t-emo" / "ranking.json", {"emotions": ranking})
    return run, dataset, tmp_path / "hand.npz", truth


def test_fidelity_scores_ig_saliency_and_random_rankings_against_the_truth(hand_made_run):
    run, dataset, data, truth = hand_made_run
    assert truth_file(data, dataset) == data.with_name("hand.truth.json")
    path = write_fidelity(run, dataset, truth_file(data, dataset), emotions=("anger", "happiness"), progress=False)
    assert path == fidelity_path(run, "t-emo")

    record = json.loads(path.read_text())
    anger, happiness = record["emotions"]["anger"], record["emotions"]["happiness"]
    assert anger["truth_landmarks"] == 40 and anger["samples"] == 4  # anger's onsets among the training windows
    assert anger["precision"]["ig"] == {"16": 1.0, "32": 1.0, "64": 0.625, "128": 0.3125}
    assert anger["precision"]["ig"] == anger["precision"]["best_possible"]
    assert set(happiness["precision"]["ig"].values()) == {0.0}  # its truth ranked last
    for emotion in (anger, happiness):  # the models only look at truth landmarks: saliency finds them all
        assert emotion["precision"]["saliency"] == emotion["precision"]["best_possible"]
        assert emotion["precision"]["random_draw"]["128"] < 0.5
    assert happiness["precision"]["random_expected"] == pytest.approx(len(truth["happiness"]) / N_LANDMARKS)
    assert record["mean"]["ig"]["16"] == 0.5


def test_a_truth_file_without_an_emotion_is_refused(tmp_path):
    path = tmp_path / "x.truth.json"
    path.write_text(json.dumps({"emotions": {"anger": {"landmarks": [1, 2]}}}))
    with pytest.raises(EdgeemoError, match=r"x.truth.json: field emotions.disgust.landmarks is missing"):
        load_truth(path)


def _onsets_moving(landmarks: list[int], count: int, rng) -> np.ndarray:
    """``count`` onsets [count, FRAMES, 2, 6], each from a rest face of its own, moving ``landmarks`` up."""
    rest = rng.normal(0, 0.1, (count, 1, 2, 6))
    move = np.zeros((1, FRAMES, 2, 6))
    move[0, :, 1, landmarks] = np.linspace(0, 2, FRAMES)
    return (rest + move).astype(np.float32)


def test_neutral_baselines_and_evidence_credit_the_emotions_own_movement():
    """The model of emotion 0 rises with landmark 0's movement and falls with landmark 1's, which another
    emotion moves (evidence against, as one-against-the-rest models learn). Emotion 0's samples move 0 and 2;
    2's movement lowers P a little. Against the other emotions' sequences, |IG| credits landmark 1 as much as
    its own landmark 0; from each sample's own rest with signed scores, 0 is first, 1 gets nothing, 2 is last."""
    from offline.explain.explain import explain_emotion

    rng = np.random.default_rng(3)
    weights = np.zeros((FRAMES, 2, 6), np.float32)
    weights[:, 1, 0], weights[:, 1, 1], weights[:, 1, 2] = 0.4, -0.4, -0.1
    model = linear_model(FRAMES, 6, weights)
    x = np.concatenate([_onsets_moving([0, 2], 5, rng)] + [_onsets_moving([1], 5, rng) for _ in range(5)])
    y = np.repeat(np.arange(6), 5)

    ours = explain_emotion(model, x, y, 0, steps=32, rule="gauss_legendre", baseline="neutral", score="evidence")
    paper = explain_emotion(model, x, y, 0, steps=32, rule="gauss_legendre", baseline="medoid", score="magnitude")

    ranking = np.argsort(-ours["scores"], kind="stable")
    assert ranking[0] == 0 and ranking[-1] == 2
    assert ours["scores"][1] == pytest.approx(0, abs=1e-6)  # landmark 1 never moves in emotion 0's samples
    assert ours["per_baseline"].shape == (1, 6) and len(ours["baselines"]) == 0
    # Evidence adds up to what the movement adds to P (completeness), on average over the samples.
    p = np.asarray(model(x[:5, ..., None]))[:, 1]
    rest = np.asarray(model(np.repeat(x[:5, :1], FRAMES, axis=1)[..., None]))[:, 1]
    assert ours["scores"].sum() == pytest.approx(np.mean(p - rest), rel=1e-3)
    assert paper["per_baseline"].shape == (5, 6)
    assert paper["scores"][1] > 0.5 * paper["scores"][0]  # the paper's choice credits the baselines' movement


def test_an_unknown_baseline_or_score_is_refused_naming_the_flag(tmp_path):
    from offline.explain.explain import explain_run

    with pytest.raises(EdgeemoError, match=r"^--baseline: unknown choice 'zero'"):
        explain_run(tmp_path / "run", tmp_path / "data.npz", baseline="zero")
    with pytest.raises(EdgeemoError, match=r"^--score: unknown choice 'abs'"):
        explain_run(tmp_path / "run", tmp_path / "data.npz", score="abs")


def test_explain_averages_the_scores_of_every_seeds_model_and_saliency_follows(tmp_path):
    """Two seeds whose models of each emotion look at different halves of its truth landmarks: with
    ``models="all"`` the ranking credits both halves with the mean of the two seeds' scores; with ``best``
    only the half of the seed with the better validation score. Saliency is taken on the same models."""
    from offline.explain.explain import explain_run
    from offline.training.train import dataset_fingerprint

    rng = np.random.default_rng(4)
    n, halves = 4 * len(EMOTIONS), {}
    y = np.tile(np.arange(len(EMOTIONS)), 4)
    rest = rng.normal(0.5, 0.1, (n, 1, 2, N_LANDMARKS))
    x = np.repeat(rest, FRAMES, axis=1)
    truth = {e: np.sort(rng.choice(N_LANDMARKS, 20, replace=False)) for e in EMOTIONS}
    for i, e in enumerate(EMOTIONS):  # each emotion's onsets move its truth landmarks up from rest
        move = np.zeros((FRAMES, 2, N_LANDMARKS))
        move[:, 1, truth[e]] = np.linspace(0, 0.2, FRAMES)[:, None]
        x[y == i] += move
        halves[e] = (truth[e][:10], truth[e][10:])
    dataset = LandmarkDataset(x, y, np.repeat([f"s{i}" for i in range(4)], len(EMOTIONS)), np.full(n, "hand"),
                              np.full(n, "onset"), np.full(n, ""),
                              {"P": FRAMES, "frame_stride": 1, "normalization": "hand", "extractor": "test",
                               "truth": "hand.truth.json"})
    dataset.save(tmp_path / "hand.npz")
    (tmp_path / "hand.truth.json").write_text(json.dumps({"emotions": {e: {"landmarks": truth[e].tolist()}
                                                                      for e in EMOTIONS}}))
    run = RunFolder(tmp_path / "run")
    run.write_json(run.config_path, {"data": {"fingerprint": dataset_fingerprint(dataset)}})
    for seed in (0, 1):
        run.write_json(run.split_path(seed), Split(seed, np.arange(n), np.arange(0), np.arange(0)).to_json(dataset))
        for e in EMOTIONS:
            weights = np.zeros((FRAMES, 2, N_LANDMARKS), np.float32)
            weights[:, 1, halves[e][seed]] = 0.5
            job = Job("t-emo", N_LANDMARKS, e, seed)
            run.save_model(job, linear_model(FRAMES, N_LANDMARKS, weights))
            run.write_result(job, {"val_metrics": {"balanced_accuracy": 0.8 + 0.1 * seed}},
                             {key: np.zeros(0) for key in PREDICTION_KEYS})

    best = explain_run(run.root, tmp_path / "hand.npz", steps=16, models="best", progress=False)
    best_scores = np.load(run.root / "explain" / "t-emo" / "scores.npz")["scores"]
    every = explain_run(run.root, tmp_path / "hand.npz", steps=16, progress=False)
    saved = np.load(run.root / "explain" / "t-emo" / "scores.npz")
    per_seed = np.stack([saved[f"per_seed_{e}"] for e in EMOTIONS])
    assert per_seed.shape == (6, 2, N_LANDMARKS)
    np.testing.assert_allclose(saved["scores"], per_seed.mean(axis=1))
    np.testing.assert_allclose(per_seed[:, 1], best_scores)  # the best seed's part file, reused
    for e in EMOTIONS:
        assert [m["seed"] for m in best["models"][e]] == [1] and [m["seed"] for m in every["models"][e]] == [0, 1]
        assert set(best["emotions"][e][:10]) == set(halves[e][1])  # seed 0's half is invisible to seed 1
        assert set(every["emotions"][e][:20]) == set(truth[e])  # both halves first
        assert every["completeness"][e]["models"] == 2 and every["completeness"][e]["samples"] == 8

    record = json.loads(write_fidelity(run, dataset, tmp_path / "hand.truth.json", progress=False).read_text())
    for e in EMOTIONS:  # saliency averaged over both seeds' models sees the whole truth too
        assert record["emotions"][e]["seeds_of_models"] == [0, 1]
        assert record["emotions"][e]["precision"]["ig"]["16"] == 1.0
        assert record["emotions"][e]["precision"]["saliency"]["16"] == 1.0


def test_an_unknown_models_choice_is_refused_naming_the_flag(tmp_path):
    from offline.explain.explain import explain_run

    with pytest.raises(EdgeemoError, match=r"^--models: unknown choice 'last'"):
        explain_run(tmp_path / "run", tmp_path / "data.npz", models="last")
