"""A model is never tested on people its landmark ranking was made from.

Without a fixed split each seed draws its own test people, so one seed's training people are another's test
people. A ranking averaged over seeds then carries the test people of every seed (through the other seeds'
models and samples), and accuracy against K would be scored on people who chose the landmarks. Here two
seeds' hand-made models of each emotion look at different halves of its landmarks (seed 1 more strongly, so
the seed-averaged top 10 is seed 1's half): each seed's K = 10 models must get their own seed's half.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytestmark = [pytest.mark.offline, pytest.mark.slow]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgeemo.emotions import EMOTIONS  # noqa: E402
from edgeemo.errors import EdgeemoError  # noqa: E402
from edgeemo.face import N_LANDMARKS  # noqa: E402
from offline.data.dataset import LandmarkDataset  # noqa: E402
from offline.data.splits import Split  # noqa: E402
from offline.training.run_folder import PREDICTION_KEYS, Job, RunFolder  # noqa: E402
from tests.test_fidelity import FRAMES, linear_model  # noqa: E402

PEOPLE = [f"p{i}" for i in range(6)]
# Hand-drawn like make_split's, no subject in two parts of a seed; seed 1 is tested on seed 0's training people.
SPLITS = {0: (["p0", "p1", "p2"], ["p3"], ["p4", "p5"]), 1: (["p3", "p4", "p5"], ["p2"], ["p0", "p1"])}
K = 10


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """A run without a fixed split: two seeds, hand-made 468-landmark models, explained with every seed's
    model (``--models all``). Returns (run, data file, dataset, each emotion's two halves, ranking.json)."""
    from offline.explain.explain import explain_run
    from offline.training.train import dataset_fingerprint

    root = tmp_path_factory.mktemp("people")
    rng = np.random.default_rng(5)
    y = np.tile(np.arange(len(EMOTIONS)), len(PEOPLE))  # every person shows every emotion once
    subject = np.repeat(PEOPLE, len(EMOTIONS))
    x = np.repeat(rng.normal(0.5, 0.1, (len(y), 1, 2, N_LANDMARKS)), FRAMES, axis=1)
    halves = {}
    for i, e in enumerate(EMOTIONS):  # each emotion's onsets move 20 landmarks of its own up from rest
        moved = np.sort(rng.choice(N_LANDMARKS, 2 * K, replace=False))
        step = np.zeros((FRAMES, 2, N_LANDMARKS))
        step[:, 1, moved] = np.linspace(0, 0.2, FRAMES)[:, None]
        x[y == i] += step
        halves[e] = (moved[:K], moved[K:])
    dataset = LandmarkDataset(x, y, subject, np.full(len(y), "hand"), np.full(len(y), "onset"), np.full(len(y), ""),
                              {"P": FRAMES, "frame_stride": 1, "normalization": "hand", "extractor": "test"})
    data = root / "hand.npz"
    dataset.save(data)
    run = RunFolder(root / "run")
    run.write_json(run.config_path, {"data": {"fingerprint": dataset_fingerprint(dataset)}})
    for seed, parts in SPLITS.items():
        indices = [np.flatnonzero(np.isin(subject, people)) for people in parts]
        run.write_json(run.split_path(seed), Split(seed, *indices).to_json(dataset))
        for e in EMOTIONS:
            weights = np.zeros((FRAMES, 2, N_LANDMARKS), np.float32)
            # Small, so P is far from saturating; seed 1's half then outweighs seed 0's in the average.
            weights[:, 1, halves[e][seed]] = 0.02 + 0.03 * seed
            job = Job("t-emo", N_LANDMARKS, e, seed)
            run.save_model(job, linear_model(FRAMES, N_LANDMARKS, weights))
            run.write_result(job, {"val_metrics": {"balanced_accuracy": 0.8}},
                             {k: np.zeros(0) for k in PREDICTION_KEYS})
    ranking = explain_run(run.root, data, steps=16, models="all", progress=False)
    return run, data, dataset, halves, ranking


def test_the_seed_averaged_ranking_names_its_people_and_each_seed_has_its_own(explained):
    run, _, dataset, halves, ranking = explained
    assert ranking["subjects"] == PEOPLE  # both seeds' training and validation people: everyone
    for seed, (train, val, test) in SPLITS.items():
        own = ranking["seeds"][str(seed)]
        assert own["subjects"] == sorted(train + val) and not set(own["subjects"]) & set(test)
        for e in EMOTIONS:
            assert set(own["emotions"][e][:K]) == set(halves[e][seed])
    for e in EMOTIONS:
        assert set(ranking["emotions"][e][:K]) == set(halves[e][1])  # the average: seed 1's half first


def test_each_seeds_k_models_take_landmarks_only_from_people_it_is_not_tested_on(explained, tmp_path):
    """Real training at K = 10 from the run's ranking file: seed 0's models see seed 0's half, not the
    seed-averaged top 10 (seed 1's half, made from seed 0's test people p4, p5)."""
    from offline.explain.explain import ranking_path
    from offline.training.train import train_run
    from offline.training.train_config import load_settings, with_threads

    run, data, dataset, halves, ranking = explained
    train_run(data, run.root, archs=("t-emo",), ks=(K,), emotions=("anger",), seeds=2, baselines=False,
              ranking=ranking_path(run, "t-emo"), settings=with_threads(load_settings(quick=True), 1), progress=False)
    for seed, (_, _, test) in SPLITS.items():
        job = Job("t-emo", K, "anger", seed)
        landmarks = run.read_result(job)["landmarks"]
        assert landmarks == sorted(halves["anger"][seed].tolist()), f"seed {seed}"
        used = next(r for s, r in ranking["seeds"].items() if set(r["emotions"]["anger"][:K]) == set(landmarks))
        tested = set(dataset.subject[run.read_predictions(job)["test_index"]].tolist())
        assert tested == set(test) and not set(used["subjects"]) & tested


def test_a_ranking_made_from_a_seeds_test_people_without_its_own_is_refused(explained, tmp_path):
    """``--models best`` explains one seed's models only: the other seed would be tested on its people."""
    from offline.training.landmark_subsets import rankings_for_seeds

    _, _, _, _, ranking = explained
    tests = {seed: set(parts[2]) for seed, parts in SPLITS.items()}
    path = tmp_path / "ranking.json"
    path.write_text(json.dumps({**ranking, "seeds": {"1": ranking["seeds"]["1"]}}))
    with pytest.raises(EdgeemoError, match=r"made from people seed 0 is tested on \('p4', field subjects\).*seeds\.0"):
        rankings_for_seeds(path, ("anger",), (K,), tests)
    path.write_text(json.dumps({**ranking, "seeds": {"0": ranking["seeds"]["1"], "1": ranking["seeds"]["1"]}}))
    with pytest.raises(EdgeemoError, match=r"field seeds\.0\.subjects: .* not shown to be made without its test"):
        rankings_for_seeds(path, ("anger",), (K,), tests)


def test_a_ranking_without_its_people_or_from_other_people_is_taken_for_every_seed(explained, tmp_path):
    """A fixed split (nobody tested is in ``subjects``), or a ranking file made elsewhere (no ``subjects``)."""
    from offline.training.landmark_subsets import rankings_for_seeds

    _, _, _, _, ranking = explained
    path = tmp_path / "ranking.json"
    path.write_text(json.dumps({"emotions": ranking["emotions"]}))
    chosen = rankings_for_seeds(path, ("anger",), (K,), {0: {"p4"}, 1: {"p0"}})
    assert all(np.array_equal(chosen[s]["anger"], ranking["emotions"]["anger"]) for s in (0, 1))
    path.write_text(json.dumps({"emotions": ranking["emotions"], "subjects": ["p0", "p1"]}))
    chosen = rankings_for_seeds(path, ("anger",), (K,), {0: {"p4"}, 1: {"p5"}})
    assert all(np.array_equal(chosen[s]["anger"], ranking["emotions"]["anger"]) for s in (0, 1))
