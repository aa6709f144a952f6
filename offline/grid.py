"""Grid search over F (filters), Q (LSTM units) and R (FC1 neurons) per emotion and K.

As in the paper: T-EMO only (R-EMO then takes the same structure), on training data only. Each trial
trains on seed 0's training subjects and is scored by its best validation loss on seed 0's validation
subjects; test subjects are never seen. (When the dataset has no split of its own, the other seeds draw
other test subjects, some of whom were in seed 0's training or validation set here.)
Trials are saved one by one in RUN/grid/k<K>/<emotion>.json, so an interrupted search resumes.
"""

from __future__ import annotations

import itertools

import numpy as np
from tqdm import tqdm

from offline.fit import fit_network
from offline.landmark_subsets import select
from offline.run import RunFolder
from offline.train_config import Hyperparameters, Settings, table_to_json
from offline.windows import SeedWindows

ARCH = "t-emo"


def grid_search(
    run: RunFolder, windows: SeedWindows, seed: int, ks: tuple[int, ...], emotions: tuple[str, ...],
    ranking: dict[str, np.ndarray] | None, settings: Settings, progress: bool = True,
) -> dict[int, dict[str, Hyperparameters]]:
    """The best F, Q, R per K and emotion; also written to RUN/grid/best.json (a hyperparameter table)."""
    grid = settings.grid
    combos = [Hyperparameters(*c) for c in itertools.product(grid.filters, grid.lstm_units, grid.dense_units)]
    records = {(k, e): run.read_json(run.grid_path(k, e)) or {"trials": []} for k in ks for e in emotions}
    pending = sum(len(_missing(records[key], combos)) for key in records)
    table: dict[int, dict[str, Hyperparameters]] = {}
    with tqdm(total=pending, desc="grid", unit="trial", disable=not progress) as bar:
        for (k, emotion), record in records.items():
            train = windows.train.take_landmarks(select(ranking, emotion, k))
            val = windows.val.take_landmarks(select(ranking, emotion, k))
            for combo in _missing(record, combos):
                bar.set_description(f"grid k{k} {emotion} F{combo.filters} Q{combo.lstm_units} R{combo.dense_units}")
                fit = fit_network(ARCH, train, val, emotion, combo, settings, seed=seed,
                                  epochs=grid.epochs, patience=grid.patience)
                record["trials"].append(_trial(combo, fit))
                record["best"] = _best(record["trials"], combos)._asdict()
                run.write_json(run.grid_path(k, emotion), record)
                bar.update()
            table.setdefault(k, {})[emotion] = _best(record["trials"], combos)
    run.write_json(run.grid_best_path, table_to_json(table))
    return table


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
