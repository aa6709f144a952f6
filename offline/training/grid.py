"""Grid search over F (filters), Q (LSTM units) and R (FC1 neurons) per emotion and K.

As in the paper: T-EMO only (R-EMO then takes the same structure), on training data only. Each trial
trains on seed 0's training subjects and is scored by its best validation loss on seed 0's validation
subjects; test subjects are never seen. (When the dataset has no split of its own, the other seeds draw
other test subjects, some of whom were in seed 0's training or validation set here.)
Trials are independent jobs for offline.training.executor (in this process or on Ray workers); each is saved in
RUN/grid/k<K>/<emotion>.json as it finishes, so an interrupted search resumes.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

from offline.training.executor import Executor, Note
from offline.training.job_plan import JobPlan
from offline.training.run_folder import RunFolder
from offline.training.train_config import Hyperparameters, table_to_json

ARCH = "t-emo"


class Trial(NamedTuple):
    k: int
    emotion: str
    hyperparameters: Hyperparameters
    seed: int  # whose training and validation subjects it uses

    def __str__(self) -> str:
        h = self.hyperparameters
        return f"k{self.k} {self.emotion} F{h.filters} Q{h.lstm_units} R{h.dense_units}"


def grid_search(
    run: RunFolder, plan: JobPlan, seed: int, ks: tuple[int, ...], emotions: tuple[str, ...], executor: Executor,
    progress: bool = True,
) -> dict[int, dict[str, Hyperparameters]]:
    """The best F, Q, R per K and emotion; also written to RUN/grid/best.json (a hyperparameter table)."""
    grid = plan.settings.grid
    combos = [Hyperparameters(*c) for c in itertools.product(grid.filters, grid.lstm_units, grid.dense_units)]
    records = {(k, e): run.read_json(run.grid_path(k, e)) or {"trials": []} for k in ks for e in emotions}
    trials = [Trial(k, e, combo, seed) for (k, e), record in records.items() for combo in _missing(record, combos)]

    def save(trial: Trial, result: dict) -> None:
        record = records[(trial.k, trial.emotion)]
        record["trials"].append(result)
        record["best"] = _best(record["trials"], combos)._asdict()
        run.write_json(run.grid_path(trial.k, trial.emotion), record)

    executor.run(_run_trial, plan, trials, save, desc="grid", unit="trial", progress=progress)
    table: dict[int, dict[str, Hyperparameters]] = {}
    for (k, emotion), record in records.items():
        table.setdefault(k, {})[emotion] = _best(record["trials"], combos)
    run.write_json(run.grid_best_path, table_to_json(table))
    return table


def _run_trial(plan: JobPlan, trial: Trial, note: Note) -> dict:
    """Train one trial's network, in this process or on a Ray worker; returns its record."""
    windows = plan.windows(trial.seed)
    landmarks = plan.landmarks(trial.emotion, trial.k, trial.seed)
    fit = plan.fit(ARCH, windows.train.take_landmarks(landmarks), windows.val.take_landmarks(landmarks),
                   trial.emotion, trial.hyperparameters, seed=trial.seed, epochs=plan.settings.grid.epochs,
                   patience=plan.settings.grid.patience, note=note)
    return _trial(trial.hyperparameters, fit)


def _missing(record: dict, combos: list[Hyperparameters]) -> list[Hyperparameters]:
    done = {_combo(t) for t in record["trials"]}
    return [c for c in combos if c not in done]


def _combo(trial: dict) -> Hyperparameters:
    return Hyperparameters(trial["filters"], trial["lstm_units"], trial["dense_units"])


def _trial(combo: Hyperparameters, fit) -> dict:
    best = fit.best_epoch
    return {
        **combo._asdict(),
        "val_loss": fit.history["val_loss"][best],
        "val_balanced_accuracy": fit.history["val_accuracy"][best],  # weighted accuracy = balanced here
        "epochs": len(fit.history["val_loss"]),
        "seconds": round(fit.seconds, 3),
    }


def _best(trials: list[dict], combos: list[Hyperparameters]) -> Hyperparameters:
    """Lowest validation loss among this grid's trials; ties go to the smaller network."""
    current = [t for t in trials if _combo(t) in combos]
    return _combo(min(current, key=lambda t: (t["val_loss"], t["filters"], t["lstm_units"], t["dense_units"])))
