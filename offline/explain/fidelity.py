"""How well a landmark ranking finds the landmarks that really carry an emotion, where that is known.

The built-in synthetic set moves known landmarks for each emotion (its ``.truth.json``, offline.synth.truth).
Precision@K of a ranking = the share of its top K that are in the emotion's truth set. Each emotion's IG
ranking (RUN/explain/<arch>/ranking.json) is scored next to two references:

  random    expected value |truth| / 468, and one seeded draw (a random order of the 468)
  saliency  plain gradients on the same models and samples as the IG step: |dF/dx| summed over frames and
            coordinates, averaged over the emotion's training onsets, then over the 468-landmark models IG used

The best a ranking can do at K is min(1, |truth| / K). Written to RUN/explain/<arch>/fidelity.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS
from offline.data.dataset import LandmarkDataset
from offline.data.splits import Split
from offline.explain.explain import explain_dir, ranking_path
from offline.export.export import best_job
from offline.training.landmark_subsets import load_ranking
from offline.training.run_folder import Job, RunFolder

FIDELITY_KS = (16, 32, 64, 128)
SALIENCY_BATCH = 64
METHODS = ("ig", "saliency", "random_draw")


def precision_at_k(ranking: np.ndarray, truth, ks) -> np.ndarray:
    """Share of each top K of ``ranking`` ([..., 468] landmark indices, best first) in ``truth``: [..., len(ks)]."""
    ks = np.asarray(ks)
    hits = np.cumsum(np.isin(ranking, np.asarray(truth)), axis=-1)  # [..., 468]: truth landmarks in the top n
    return hits[..., ks - 1] / ks


def random_precision(truth_size: int) -> float:
    """Expected precision@K of a random order, for every K: the truth's share of the 468."""
    return truth_size / N_LANDMARKS


def saliency_scores(model, x: np.ndarray, target: int = 1) -> np.ndarray:
    """Mean over samples of |dF/dx| summed over frames and coordinates: one score per landmark, [L].

    ``x`` is [n, P, 2, L] or the model's own [n, P, 2, L, 1]; F is the model's output column ``target``
    (P(emotion) for T-EMO and R-EMO).
    """
    import tensorflow as tf

    x = np.asarray(x, dtype=np.float32)
    x = x[..., None] if x.ndim == 4 else x
    total = np.zeros(x.shape[3])
    for start in range(0, len(x), SALIENCY_BATCH):
        chunk = tf.constant(x[start:start + SALIENCY_BATCH])
        with tf.GradientTape() as tape:
            tape.watch(chunk)
            # Summing over the batch keeps each sample's own gradient: samples do not interact at inference.
            output = tf.reduce_sum(model(chunk, training=False)[:, target])
        total += np.abs(tape.gradient(output, chunk).numpy()).sum(axis=(0, 1, 2, 4))
    return total / len(x)


def truth_file(data: str | Path, dataset: LandmarkDataset) -> Path | None:
    """The ground-truth file beside a dataset that names one in its meta (the built-in synthetic set), or None."""
    name = dataset.meta.get("truth")
    return Path(data).with_name(name) if name and Path(data).with_name(name).is_file() else None


def load_truth(path: str | Path) -> dict[str, np.ndarray]:
    """Each emotion's ground-truth landmarks from a .truth.json (offline.synth.truth)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeemoError(f"{path}: not a readable ground-truth file ({exc})") from None
    table = raw.get("emotions") if isinstance(raw, dict) else None
    missing = [e for e in EMOTIONS if not isinstance(table, dict) or "landmarks" not in table.get(e, {})]
    if missing:
        raise EdgeemoError(f"{path}: field emotions.{missing[0]}.landmarks is missing")
    return {e: np.asarray(table[e]["landmarks"], dtype=np.int64) for e in EMOTIONS}


def fidelity_path(run: RunFolder, arch: str) -> Path:
    return explain_dir(run, arch) / "fidelity.json"


def write_fidelity(run: RunFolder, dataset: LandmarkDataset, truth_path: Path, *, arch: str = "t-emo",
                   ks: tuple[int, ...] = FIDELITY_KS, emotions: tuple[str, ...] = EMOTIONS, seed: int = 0,
                   progress: bool = True) -> Path:
    """Score the arch's IG ranking, a saliency ranking and a random one against the truth; write fidelity.json."""
    rankings = load_ranking(ranking_path(run, arch), emotions, ks)
    truth = load_truth(truth_path)
    draws = np.random.default_rng(seed).permuted(np.tile(np.arange(N_LANDMARKS), (len(EMOTIONS), 1)), axis=1)
    table = {}
    explained = (run.read_json(ranking_path(run, arch)) or {}).get("models", {})
    for emotion in tqdm(emotions, desc=f"fidelity {arch}", unit="emotion", disable=not progress):
        jobs = _explained_jobs(run, arch, emotion, explained.get(emotion))
        samples = [_own_training_onsets(run, dataset, job.seed, emotion) for job in jobs]
        saliency = np.mean([saliency_scores(run.load_model(job), dataset.X[own]) for job, own in zip(jobs, samples)], 0)
        orders = {"ig": rankings[emotion], "saliency": np.argsort(-saliency, kind="stable"),
                  "random_draw": draws[EMOTIONS.index(emotion)]}
        size = len(truth[emotion])
        table[emotion] = {
            "truth_landmarks": size, "seeds_of_models": [job.seed for job in jobs], "samples": sum(map(len, samples)),
            "precision": {m: _by_k(precision_at_k(order, truth[emotion], ks), ks) for m, order in orders.items()}
            | {"random_expected": random_precision(size),
               "best_possible": _by_k(np.minimum(1.0, size / np.asarray(ks)), ks)},
        }
    record = {
        "arch": arch, "ks": list(ks), "truth_file": str(truth_path), "ranking_file": str(ranking_path(run, arch)),
        "random_seed": seed, "emotions": table,
        "mean": {m: _by_k(np.mean([[table[e]["precision"][m][str(k)] for k in ks] for e in emotions], axis=0), ks)
                 for m in METHODS + ("best_possible",)}
        | {"random_expected": float(np.mean([table[e]["precision"]["random_expected"] for e in emotions]))},
    }
    path = fidelity_path(run, arch)
    run.write_json(path, record)
    return path


def _explained_jobs(run: RunFolder, arch: str, emotion: str, recorded) -> list[Job]:
    """The models the IG ranking was computed with (ranking.json's "models"; older runs: one, the best)."""
    if isinstance(recorded, dict):
        recorded = [recorded]
    return [Job(**job) for job in recorded] if recorded else [best_job(run, arch, N_LANDMARKS, emotion)]


def _own_training_onsets(run: RunFolder, dataset: LandmarkDataset, seed: int, emotion: str) -> np.ndarray:
    """The samples the IG step explains: the emotion's onsets among the seed's training windows."""
    split = Split.from_json(run.read_json(run.split_path(seed)))
    train = split.train
    own = train[(dataset.segment[train] == "onset") & (dataset.y[train] == EMOTIONS.index(emotion))]
    if not len(own):
        raise EdgeemoError(f"--data: no training onset of {emotion} in seed {seed}'s split to take gradients on")
    return own


def _by_k(values: np.ndarray, ks) -> dict[str, float]:
    return {str(k): round(float(v), 4) for k, v in zip(ks, values)}
