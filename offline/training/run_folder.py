"""The run folder: what ``edgeemo train`` writes, and where report, explain and export find it.

    RUN/
      config.json                                    what the run is made from: dataset fingerprint,
                                                     settings, hyperparameter table, ranking file digest
      splits/seed<S>.json                            seed S's subject-disjoint split: dataset indices and
                                                     subjects of train, val and test
      grid/k<K>/<emotion>.json                       grid-search trials and the best F, Q, R (with --grid)
      grid/best.json                                 the best of every K and emotion: a hyperparameter table
      models/<arch>/k<K>/<emotion>/seed<S>.keras     trained networks (arch: t-emo, r-emo)
      results/<model>/k<K>/<emotion>/seed<S>.json    one finished job: landmarks used, hyperparameters,
                                                     test metrics per protocol, history, training time
      results/<model>/k<K>/<emotion>/seed<S>.npz     its scores P(emotion) with dataset index, y and
                                                     segment, for validation (to pick a threshold) and test
      report/                                        tables and figures of ``edgeemo report``

``model`` is an arch or a baseline (svm-linear, svm-rbf). A job (model, K, emotion, seed) is finished
when its result JSON exists: the model and predictions are written first, the JSON last, each atomically.

Later steps (explain, select, export) use it like this::

    run = RunFolder("runs/paper")
    for job in run.finished_jobs():                  # Job(model, k, emotion, seed)
        if job.model in ARCHS:
            model = run.load_model(job)              # input "landmarks" [batch, P, 2, K, 1]
            landmarks = run.read_result(job)["landmarks"]       # the K mesh indices, ascending
            val = run.read_predictions(job)          # val_score, val_y, val_segment: pick a threshold
    split = run.read_json(run.split_path(seed))      # training indices for global IG
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.io import atomic_path, atomic_save_npz, atomic_write_json
from offline.training.model import ARCHS

BASELINES = ("svm-linear", "svm-rbf")
MODELS = ARCHS + BASELINES
PREDICTION_KEYS = tuple(f"{part}_{field}" for part in ("val", "test") for field in ("index", "y", "segment", "score"))
_RESULT_PATH = re.compile(r"^(?P<model>[a-z-]+)/k(?P<k>\d+)/(?P<emotion>[a-z]+)/seed(?P<seed>\d+)\.json$")


class Job(NamedTuple):
    model: str
    k: int
    emotion: str
    seed: int

    def __str__(self) -> str:
        return f"{self.model} k{self.k} {self.emotion} seed{self.seed}"

    @property
    def relative(self) -> str:
        return f"{self.model}/k{self.k}/{self.emotion}/seed{self.seed}"


class RunFolder:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def split_path(self, seed: int) -> Path:
        return self.root / "splits" / f"seed{seed}.json"

    def grid_path(self, k: int, emotion: str) -> Path:
        return self.root / "grid" / f"k{k}" / f"{emotion}.json"

    @property
    def grid_best_path(self) -> Path:
        return self.root / "grid" / "best.json"

    def model_path(self, job: Job) -> Path:
        return self.root / "models" / f"{job.relative}.keras"

    def result_path(self, job: Job) -> Path:
        return self.root / "results" / f"{job.relative}.json"

    def predictions_path(self, job: Job) -> Path:
        return self.root / "results" / f"{job.relative}.npz"

    def is_done(self, job: Job) -> bool:
        return self.result_path(job).is_file()

    def read_json(self, path: Path) -> dict | None:
        """A JSON file of the run, or None when it is not there."""
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise EdgeemoError(f"{path}: not valid JSON ({exc})") from None

    def write_json(self, path: Path, data: dict) -> None:
        atomic_write_json(path, data)

    def save_model(self, job: Job, model) -> None:
        # The temporary name must end in .keras, or Keras refuses to save.
        with atomic_path(self.model_path(job), suffix=".keras") as tmp:
            model.save(tmp)

    def write_model(self, job: Job, keras_file: bytes) -> None:
        """Save a model sent as the bytes of its .keras file (by a job that ran elsewhere)."""
        with atomic_path(self.model_path(job), suffix=".keras") as tmp:
            tmp.write_bytes(keras_file)

    def load_model(self, job: Job):
        import keras

        path = self.model_path(job)
        if not path.is_file():
            raise EdgeemoError(f"{path}: no such model (is job {job} trained?)")
        return keras.saving.load_model(path, compile=False)  # for inference: no optimizer state

    def write_result(self, job: Job, result: dict, predictions: dict[str, np.ndarray]) -> None:
        """Save a job's predictions, then its result JSON: from then on the job counts as finished."""
        missing = set(PREDICTION_KEYS) - set(predictions)
        if missing:
            raise ValueError(f"predictions lack {sorted(missing)}")
        atomic_save_npz(self.predictions_path(job), **predictions)
        atomic_write_json(self.result_path(job), {**result, "job": job._asdict()})

    def read_result(self, job: Job) -> dict:
        result = self.read_json(self.result_path(job))
        if result is None:
            raise EdgeemoError(f"{self.result_path(job)}: no such result (is job {job} finished?)")
        return result

    def read_predictions(self, job: Job) -> dict[str, np.ndarray]:
        path = self.predictions_path(job)
        if not path.is_file():
            raise EdgeemoError(f"{path}: no such predictions file")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    def finished_jobs(self) -> list[Job]:
        """Every finished job, sorted by model (in MODELS order), K (largest first), emotion, seed."""
        results = self.root / "results"
        jobs = []
        for path in results.rglob("seed*.json") if results.is_dir() else ():
            match = _RESULT_PATH.match(path.relative_to(results).as_posix())
            if match and match["model"] in MODELS and match["emotion"] in EMOTIONS:
                jobs.append(Job(match["model"], int(match["k"]), match["emotion"], int(match["seed"])))
        return sorted(jobs, key=lambda j: (MODELS.index(j.model), -j.k, EMOTIONS.index(j.emotion), j.seed))
