"""``edgeemo export``: a trained run's models at one K -> a model bundle the runtime loads without TensorFlow.

Per emotion: the seed whose model did best on its validation subjects, exported to ONNX, checked against
Keras on that seed's held-out test windows (refused above 1e-4), with a decision threshold chosen on the
validation windows (or one fixed threshold for every emotion); then the fused streaming pair of all six,
checked against Keras too (offline/streaming_export.py). The bundle is assembled in a temporary
folder beside ``out`` and renamed into place, so a failed export leaves an earlier bundle untouched.
The bundle's contract: docs/contracts/bundle.md.

A run trained on rest-relative data (dataset meta ``representation``) becomes a calibrated bundle (schema 2):
its manifest states the representation and the rest estimator's settings (from the dataset's meta), and
the absolute bundle served until a face's rest is known (``uncalibrated``, e.g. the shipped default) is
copied whole into its ``uncalibrated/`` sub-folder.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeemo import __version__
from edgeemo.bundle import UNCALIBRATED_FOLDER, ModelBundle, load_bundle, write_manifest
from edgeemo.calibration import ABSOLUTE
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.io import replace_folder
from offline.data.dataset import LandmarkDataset
from offline.export.onnx_export import INPUT_NAME, check_parity, export_onnx
from offline.training.evaluate import binary_labels
from offline.training.run_folder import Job, RunFolder
from offline.export.streaming_export import add_checked_pair, frame_interval

PARITY_WINDOWS = 64  # held-out windows the parity check runs on
THRESHOLD_RANGE = (0.05, 0.95)  # a threshold at the edge of (0, 1) would make a model always or never fire


def finished_seeds(run: RunFolder, arch: str, k: int, emotion: str) -> list[Job]:
    """The finished jobs of (arch, K, emotion), one per seed, in seed order."""
    jobs = sorted((j for j in run.finished_jobs() if (j.model, j.k, j.emotion) == (arch, k, emotion)),
                  key=lambda j: j.seed)
    if not jobs:
        raise EdgeemoError(f"{run.root}: no finished {arch} model at K={k} for {emotion} (train it first)")
    return jobs


def best_job(run: RunFolder, arch: str, k: int, emotion: str) -> Job:
    """The finished job of (arch, K, emotion) with the best validation balanced accuracy."""
    jobs = finished_seeds(run, arch, k, emotion)

    def score(job: Job) -> float:
        value = run.read_result(job)["val_metrics"].get("balanced_accuracy")
        return -1.0 if value is None else value

    return max(jobs, key=lambda j: (score(j), -j.seed))


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score cut that maximises balanced accuracy on validation windows (midpoints between scores)."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return 0.5
    cuts = np.unique(np.clip(scores, *THRESHOLD_RANGE))
    cuts = np.concatenate([[THRESHOLD_RANGE[0]], (cuts[:-1] + cuts[1:]) / 2, [THRESHOLD_RANGE[1]]])
    predicted = scores[None, :] >= cuts[:, None]
    balanced = 0.5 * ((predicted & labels).sum(1) / labels.sum() + (~predicted & ~labels).sum(1) / (~labels).sum())
    best = np.flatnonzero(balanced == balanced.max())
    return float(cuts[best[len(best) // 2]])  # the middle of the best plateau, away from its edges


def decision_threshold(predictions: dict[str, np.ndarray], emotion: str, threshold: float | None = None) -> float:
    """The threshold a bundle gives one job's model: ``threshold``, or chosen on the job's validation windows.

    The one rule for ``export_bundle`` and for the report's fused six-class result (offline.report.report).
    """
    if threshold is not None:
        return threshold
    labels = binary_labels(predictions["val_y"], predictions["val_segment"], EMOTIONS.index(emotion))
    return choose_threshold(labels, predictions["val_score"])


def export_bundle(run_dir: str | Path, data: str | Path, out: str | Path, *, k: int, arch: str = "t-emo",
                  bundle_id: str | None = None, threshold: float | None = None,
                  uncalibrated: str | Path | None = None, progress: bool = True) -> ModelBundle:
    """Write the bundle; ``threshold`` None chooses each emotion's on its validation windows. ``uncalibrated``:
    the absolute bundle a rest-relative run's bundle falls back on (required for those, refused for others)."""
    run, config, dataset = open_trained_run(run_dir, data)
    fallback = uncalibrated_bundle(dataset, data, uncalibrated)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a bundle is read by whoever runs serve
    try:
        calibration = {}
        if fallback is not None:  # first: the manifest names it, and every load of the staging folder reads it
            shutil.copytree(fallback.path, staging / UNCALIBRATED_FOLDER)
            calibration = {"representation": dataset.representation,
                           "rest_estimator": dataset.meta["rest_estimator"], "uncalibrated": UNCALIBRATED_FOLDER}
        models, accuracy, hyperparameters, keras_models = {}, {}, {}, {}
        for emotion in tqdm(EMOTIONS, desc="export", unit="model", disable=not progress):
            job = best_job(run, arch, k, emotion)
            result = run.read_result(job)
            landmarks = np.asarray(result["landmarks"], dtype=np.int64)
            predictions = run.read_predictions(job)
            cut = decision_threshold(predictions, emotion, threshold)
            model = run.load_model(job)
            path = export_onnx(model, staging / f"{emotion}.onnx", dataset.frames, len(landmarks))
            held_out = predictions["test_index"][:PARITY_WINDOWS]
            difference = check_parity(model, path, dataset.X[held_out][..., landmarks][..., None])
            models[emotion] = {"file": path.name, "landmarks": landmarks.tolist(), "threshold": cut,
                               "input_name": INPUT_NAME, "seed": job.seed, "parity_max_abs_difference": difference}
            accuracy[emotion] = result["metrics"]
            keras_models[emotion] = (model, dataset.X[held_out])
            hyperparameters[emotion] = result.get("hyperparameters")
        write_manifest(staging, {
            "bundle_id": bundle_id or _bundle_id(config, arch, k),
            "emotions": list(EMOTIONS),
            "frames": dataset.frames,
            "frame_stride": _frame_stride(dataset),
            "normalization": dataset.meta["normalization"],
            "models": models,
            "architecture": {"name": arch, **config["settings"].get("model", {})},
            "hyperparameters": hyperparameters,
            "training_data": _data_summary(dataset, data, config),
            "accuracy": accuracy,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "edgeemo_version": __version__,
            **calibration,
        })
        load_bundle(staging)  # the runtime's own checks, before anything replaces ``out``
        add_checked_pair(staging, keras_models, dataset.meta)  # the fused streaming pair (docs/streaming.md)
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_bundle(out)


def uncalibrated_bundle(dataset: LandmarkDataset, data: str | Path,
                        path: str | Path | None) -> ModelBundle | None:
    """The checked fallback bundle at ``path`` for a rest-relative dataset (None for an absolute one)."""
    if dataset.representation == ABSOLUTE:
        if path is not None:
            raise EdgeemoError(f"--uncalibrated: {data} holds absolute faces; only a bundle trained on "
                               f"rest-relative data falls back on an uncalibrated one")
        return None
    if path is None:
        raise EdgeemoError(f"--uncalibrated: {data} holds {dataset.representation} faces; give the absolute bundle "
                           f"to serve until a face's rest is known (--uncalibrated PATH, e.g. edgeemo/models/default)")
    bundle = load_bundle(path)
    if bundle.calibrated:
        raise EdgeemoError(f"--uncalibrated: {path} is a calibrated bundle; the fallback must read absolute faces")
    window = (dataset.frames, _frame_stride(dataset), frame_interval(dataset.meta))
    if not bundle.has_window(*window):
        raise EdgeemoError(f"--uncalibrated: {path} has windows of {bundle.frames} frames, stride {bundle.frame_stride} "
                           f"at {1 / bundle.frame_interval_s:g} fps; this export's are {window[0]} frames, stride "
                           f"{window[1]} at {1 / window[2]:g} fps")
    return bundle


def open_trained_run(run_dir: str | Path, data: str | Path) -> tuple[RunFolder, dict, LandmarkDataset]:
    """The run folder, its config and the dataset, refused unless the run was trained on that dataset."""
    from offline.training.train import dataset_fingerprint

    run = RunFolder(run_dir)
    config = run.read_json(run.config_path)
    if config is None:
        raise EdgeemoError(f"{run.config_path}: missing (is {run.root} a training run?)")
    dataset = LandmarkDataset.load(data)
    if config["data"]["fingerprint"] != dataset_fingerprint(dataset):
        raise EdgeemoError(f"--data: {data} is not the dataset run {run.root} was trained on")
    return run, config, dataset


def _frame_stride(dataset: LandmarkDataset) -> int:
    stride = dataset.meta.get("frame_stride")
    # Imports resample each clip to P frames ("resampled"): the runtime then takes every 2nd camera frame,
    # about one second of 30 fps video, the span of a spontaneous onset.
    return stride if isinstance(stride, int) and stride > 0 else 2


def _bundle_id(config: dict, arch: str, k: int) -> str:
    return f"{arch}-k{k}-{config['data']['fingerprint'][:8]}"


def _data_summary(dataset: LandmarkDataset, data, config: dict) -> dict:
    meta = dataset.meta
    return {
        "file": Path(data).name, "fingerprint": config["data"]["fingerprint"], "windows": len(dataset),
        "subjects": len(set(dataset.subject)), "extractor": meta.get("extractor"),
        "generator": meta.get("generator"), "seed": meta.get("seed"),
        **({"representation": dataset.representation} if dataset.representation != ABSOLUTE else {}),
        "segments": {s: int((dataset.segment == s).sum()) for s in sorted(set(dataset.segment))},
    }
