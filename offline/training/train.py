"""Training runs: T-EMO and R-EMO per emotion (one vs rest), seeds with their own subject-disjoint splits,
and the SVM baselines on the same splits, all into one resumable run folder (see offline.training.run_folder).

Protocol (the paper's section 4): Adam at 1e-4, batches of 16, cross-entropy, 10% of the training
subjects for validation, early stopping on validation loss with the best weights kept, one split and
one initialisation per seed; mirrored copies of the training windows. Each job is evaluated on its
seed's test subjects under both protocols of offline.training.evaluate.

Jobs run through offline.training.executor: one after another in this process, or in parallel on Ray workers
(local, or a cluster). A job builds its seed's windows itself, trains, and returns its result, predictions
and model file; this process writes them into the run folder. Wherever it runs, a job trains with the
same TensorFlow thread count (the settings'), so its outputs do not depend on where it ran.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS
from offline.data.dataset import LandmarkDataset
from offline.data.splits import Split, check_disjoint, make_split, subject_sample
from offline.training.baselines import fit_svm, svm_scores
from offline.training.evaluate import binary_metrics, protocol_metrics
from offline.training.executor import Executor, Note
from offline.training.fit import predict_scores
from offline.training.grid import grid_search
from offline.training.job_plan import JobPlan, release_arrays
from offline.training.landmark_subsets import load_ranking, ranking_digest, rankings_for_seeds
from offline.training.model import ARCHS
from offline.training.run_folder import BASELINES, Job, RunFolder
from offline.training.train_config import (
    Hyperparameters, Settings, hyperparameters_for, load_hyperparameters, load_settings, table_to_json,
)
from offline.training.windows import Windows, training_labels

CONFIG_SCHEMA = 1


@dataclass
class TrainSummary:
    trained: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)  # finished by an earlier run
    seconds: float = 0.0


def train_run(
    data: str | Path | LandmarkDataset,
    out: str | Path,
    *,
    archs: tuple[str, ...] = ARCHS,
    ks: tuple[int, ...] = (N_LANDMARKS,),
    ranking: str | Path | None = None,
    seeds: int | None = None,
    emotions: tuple[str, ...] = EMOTIONS,
    baselines: bool = True,
    grid: bool = False,
    quick: bool = False,
    settings: Settings | None = None,
    hyperparameters: str | Path | None = None,
    progress: bool = True,
    workers: int = 1,
    ray_address: str | None = None,
) -> TrainSummary:
    """Train every (model, K, emotion, seed) job not yet finished in ``out``; returns what it did.

    ``ranking`` is a ranking file (offline.training.landmark_subsets), needed for K < 468. ``hyperparameters`` is
    a table file (default: the paper's); ``grid`` searches F, Q, R first and uses the best instead.
    ``settings`` default to offline/resources/configs/train.toml, in its quick mode when ``quick``; ``seeds`` to theirs.
    Jobs (and grid trials) run in this process with one worker, else on that many local Ray workers, or
    on the Ray cluster at ``ray_address``.
    """
    start = time.perf_counter()
    settings = settings or load_settings(quick=quick)
    seeds = seeds or settings.train.seeds
    _check_choices(archs, ks, emotions, ranking)
    dataset = _load(data)
    within = subject_sample(dataset, settings.train.subject_fraction)
    if ranking is not None:
        load_ranking(ranking, emotions, ks)  # a bad ranking file is named before anything else
    table = load_hyperparameters(hyperparameters)
    run = RunFolder(out)
    config = _checked_config(run, dataset, settings, table, ranking, grid)
    splits = [_split(run, dataset, seed, settings, within) for seed in range(seeds)]
    rankings = None if ranking is None else rankings_for_seeds(
        ranking, emotions, ks, {s.seed: set(dataset.subject[s.test].tolist()) for s in splits})
    _check_both_classes(dataset, splits, emotions, settings)
    _save_run_files(run, dataset, config, splits)  # only once the input passed every check
    plan = JobPlan(uuid.uuid4().hex, dataset, splits, table, rankings, settings)
    jobs = [Job(m, k, e, s) for s in range(seeds) for k in ks for e in emotions  # seed by seed: see job_plan._reuse
            for m in archs + (BASELINES if baselines else ())]
    summary = TrainSummary(skipped=[j for j in jobs if run.is_done(j)])
    pending = [j for j in jobs if not run.is_done(j)]
    try:
        with Executor(workers, ray_address, cpus_per_job=settings.compute.threads) as executor:
            if grid and archs:
                plan = replace(plan, table=_grid(run, plan, ks, emotions, executor, progress), from_grid=True)
            executor.run(_run_job, plan, pending, partial(_save, run, summary), desc="train", unit="model",
                         progress=progress)
    finally:
        release_arrays()  # the driver keeps no seed's arrays once the run is over
    summary.seconds = time.perf_counter() - start
    return summary


@dataclass
class JobOutput:
    """What a job sends back to the driver, which writes it into the run folder."""

    result: dict
    predictions: dict[str, np.ndarray]
    model: bytes | None  # the trained network as a .keras file; None for an SVM


def _run_job(plan: JobPlan, job: Job, note: Note) -> JobOutput:
    """Train and test one job, in this process or on a Ray worker."""
    windows = plan.windows(job.seed)
    landmarks = plan.landmarks(job.emotion, job.k, job.seed)
    train, val, test = (w.take_landmarks(landmarks) for w in (windows.train, windows.val, windows.test))
    train_job = _train_network if job.model in ARCHS else _train_baseline
    val_scores, test_scores, details, model = train_job(plan, job, train, val, test, note)
    result = _result(job, landmarks, train, val, test, val_scores, test_scores, plan.settings) | details
    return JobOutput(result, _predictions(val, val_scores, test, test_scores), model)


def _save(run: RunFolder, summary: TrainSummary, job: Job, output: JobOutput) -> None:
    """Write a finished job: its model, then its predictions and result (from then on it counts as done)."""
    result = output.result
    if output.model is not None:
        run.write_model(job, output.model)
        result = {**result, "model_file": run.model_path(job).relative_to(run.root).as_posix()}
    run.write_result(job, result, output.predictions)
    summary.trained.append(job)


def _train_network(plan: JobPlan, job: Job, train: Windows, val: Windows, test: Windows, note: Note):
    hyper, source = _hyperparameters(plan, job)
    fit = plan.fit(job.model, train, val, job.emotion, hyper, seed=job.seed, epochs=plan.settings.train.epochs,
                   patience=plan.settings.train.patience, note=note)
    details = {
        "hyperparameters": {**hyper._asdict(), "from": source},
        "history": fit.history, "epochs": len(fit.history["loss"]), "best_epoch": fit.best_epoch,
        "train_seconds": round(fit.seconds, 3),
    }
    return predict_scores(fit.model, val), predict_scores(fit.model, test), details, _keras_file(fit.model)


def _keras_file(model) -> bytes:
    """The model as the bytes of a .keras file (written and read back: Keras saves only to a path)."""
    with tempfile.TemporaryDirectory(prefix="edgeemo-model-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _train_baseline(plan: JobPlan, job: Job, train: Windows, val: Windows, test: Windows, note: Note):
    started = time.perf_counter()
    features = plan.svm_features(job, train, val, test)
    svm = fit_svm(job.model, features, train.labels(job.emotion), c=plan.settings.svm.c, seed=job.seed)
    # Includes computing the shared Gram matrices, for the first SVM of a seed and landmark set.
    details = {"train_seconds": round(time.perf_counter() - started, 3)}
    scores = svm_scores(svm, job.model, features, "val"), svm_scores(svm, job.model, features, "test")
    return *scores, details, None


def _result(job: Job, landmarks, train: Windows, val: Windows, test: Windows, val_scores, test_scores,
            settings: Settings) -> dict:
    threshold = settings.evaluate.threshold
    emotion = EMOTIONS.index(job.emotion)
    return {
        "landmarks": landmarks.tolist(),
        "frames": int(train.x.shape[1]),
        "threshold": threshold,
        "metrics": protocol_metrics(test.y, test.segment, test_scores, emotion, threshold),
        "val_metrics": binary_metrics(val.labels(job.emotion), val_scores, threshold),
        "counts": {"train": len(train), "train_positive": int(train.labels(job.emotion).sum()),
                   "val": len(val), "test": len(test)},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _predictions(val: Windows, val_scores: np.ndarray, test: Windows, test_scores: np.ndarray) -> dict:
    arrays = {}
    for part, windows, scores in (("val", val, val_scores), ("test", test, test_scores)):
        arrays |= {f"{part}_index": windows.index, f"{part}_y": windows.y, f"{part}_segment": windows.segment,
                   f"{part}_score": scores}
    return arrays


def _hyperparameters(plan: JobPlan, job: Job) -> tuple[Hyperparameters, str]:
    """F, Q, R for a job and where they came from: the grid search, quick mode, or a table's K."""
    if plan.from_grid:
        return plan.table[job.k][job.emotion], "grid"
    if plan.settings.hyperparameters is not None:
        return plan.settings.hyperparameters, "quick"
    hyper, source_k = hyperparameters_for(plan.table, job.k, job.emotion)
    return hyper, f"k{source_k}"


def _grid(run: RunFolder, plan: JobPlan, ks, emotions, executor: Executor,
          progress: bool) -> dict[int, dict[str, Hyperparameters]]:
    return grid_search(run, plan, plan.splits[0].seed, ks, emotions, executor, progress)


def _load(data: str | Path | LandmarkDataset) -> LandmarkDataset:
    if isinstance(data, LandmarkDataset):
        data.validate("--data")
        return data
    return LandmarkDataset.load(data)


def _check_choices(archs: tuple[str, ...], ks: tuple[int, ...], emotions: tuple[str, ...], ranking) -> None:
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        raise EdgeemoError(f"--arch: unknown architecture {unknown[0]!r} (expected {', '.join(ARCHS)} or both)")
    bad = [k for k in ks if not 1 <= k <= N_LANDMARKS]
    if bad:
        raise EdgeemoError(f"--k {bad[0]}: must be between 1 and {N_LANDMARKS}")
    if ranking is None and min(ks) < N_LANDMARKS:
        raise EdgeemoError(f"--k {min(ks)}: fewer than {N_LANDMARKS} landmarks need a ranking file in --landmarks")
    unknown = [e for e in emotions if e not in EMOTIONS]
    if unknown:
        raise EdgeemoError(f"--emotions: unknown emotion {unknown[0]!r} (expected {', '.join(EMOTIONS)})")
    if not emotions or not ks:
        raise EdgeemoError("--emotions and --k: give at least one of each")


def _check_both_classes(dataset: LandmarkDataset, splits: list[Split], emotions, settings: Settings) -> None:
    for split in splits:
        for emotion in emotions:
            labels = training_labels(dataset, split, settings.train.segments, emotion)
            positives = int(labels.sum())
            if positives in (0, len(labels)):
                kind = "positive (onset/apex)" if positives == 0 else "negative"
                raise EdgeemoError(
                    f"--data: field y gives {emotion} no {kind} training windows in seed {split.seed}'s split; "
                    "a binary model needs both classes"
                )


def _split(run: RunFolder, dataset: LandmarkDataset, seed: int, settings: Settings, within: np.ndarray) -> Split:
    """Seed's split as saved in the run (every job of a seed shares it), or a new one."""
    path = run.split_path(seed)
    saved = run.read_json(path)
    if saved is not None:
        split = Split.from_json(saved)
        check_disjoint(dataset, split, str(path))
        return split
    return make_split(dataset, seed, settings.train.validation_fraction, settings.train.test_fraction, within)


def _save_run_files(run: RunFolder, dataset: LandmarkDataset, config: dict, splits: list[Split]) -> None:
    run.write_json(run.config_path, config)
    for split in splits:
        if not run.split_path(split.seed).is_file():
            run.write_json(run.split_path(split.seed), split.to_json(dataset))


def _checked_config(run: RunFolder, dataset: LandmarkDataset, settings: Settings, table, ranking, grid) -> dict:
    """The run's config.json content; for an existing run, refuse anything that would change its jobs."""
    config = {
        "schema": CONFIG_SCHEMA,
        "data": {"fingerprint": dataset_fingerprint(dataset), "windows": len(dataset), "frames": dataset.frames,
                 "meta": dataset.meta},
        "settings": settings.results_relevant(),
        "hyperparameters": "grid" if grid else table_to_json(table),
    }
    saved = run.read_json(run.config_path) or {}
    for key in ("data", "settings", "hyperparameters"):
        if key in saved and _fingerprints_differ(saved[key], config[key]):
            raise EdgeemoError(
                f"{run.config_path}: this run was made with other {key} (see the file); "
                "resume with the same ones or pass a new --out"
            )
    config["ranking"] = _ranking_record(ranking, saved.get("ranking"))
    return config


def _ranking_record(ranking: str | Path | None, saved: dict | None) -> dict | None:
    """The ranking file the run's K < 468 models use; one per run, so their landmarks agree."""
    if ranking is None:
        return saved
    record = {"file": str(ranking), "sha256": ranking_digest(ranking)}
    if saved and saved["sha256"] != record["sha256"]:
        raise EdgeemoError(f"--landmarks: {ranking} differs from the ranking file this run used ({saved['file']})")
    return record


def _fingerprints_differ(saved, current) -> bool:
    if isinstance(saved, dict) and isinstance(current, dict) and "fingerprint" in current:
        return saved.get("fingerprint") != current["fingerprint"]
    return saved != current


def dataset_fingerprint(dataset: LandmarkDataset) -> str:
    """SHA-256 of the arrays training reads (not of the file: re-saving the same data keeps the run)."""
    digest = hashlib.sha256()
    for array in (dataset.X, dataset.y, dataset.subject, dataset.segment, dataset.split):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
