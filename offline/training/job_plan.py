"""What every job of a training run reads (``JobPlan``), shared by offline.training.train and offline.training.grid.

It lives apart from both so that train can run the grid search and the grid search can run trials on the
same plan without the two modules importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import numpy as np

from offline.data.dataset import LandmarkDataset
from offline.data.splits import Split
from offline.training.baselines import SvmFeatures
from offline.training.executor import Note
from offline.training.fit import Fit, fit_network
from offline.training.landmark_subsets import select
from offline.training.run_folder import Job
from offline.training.tf_setup import tensorflow
from offline.training.train_config import Hyperparameters, Settings
from offline.training.windows import SeedWindows, Windows

T = TypeVar("T")


@dataclass(frozen=True)
class JobPlan:
    """What every job of a run reads. Ray sends it to each worker, so it holds no path into the run folder."""

    token: str  # this run's, telling its cached arrays from another run's in a long-lived worker
    dataset: LandmarkDataset
    splits: list[Split]
    table: dict[int, dict[str, Hyperparameters]]
    rankings: dict[int, dict[str, np.ndarray]] | None  # each seed's, never made from its test people
    settings: Settings
    from_grid: bool = False  # table holds the grid search's best F, Q, R

    def landmarks(self, emotion: str, k: int, seed: int) -> np.ndarray:
        """The K landmarks seed ``seed``'s model of ``emotion`` sees (offline.training.landmark_subsets.select)."""
        return select(None if self.rankings is None else self.rankings[seed], emotion, k)

    def windows(self, seed: int) -> SeedWindows:
        return _reuse("windows", (self.token, seed), lambda: SeedWindows.build(
            self.dataset, self.splits[seed], self.settings.train.segments, self.settings.train.mirror))

    def svm_features(self, job: Job, train: Windows, val: Windows, test: Windows) -> SvmFeatures:
        """Gram matrices shared by every SVM with the same seed and landmarks."""
        key = (self.token, job.seed, self.landmarks(job.emotion, job.k, job.seed).tobytes())
        return _reuse("svm", key, lambda: SvmFeatures(train.x, val=val.x, test=test.x))

    def fit(self, arch: str, train: Windows, val: Windows, emotion: str, hyperparameters: Hyperparameters, *,
            seed: int, epochs: int, patience: int, note: Note) -> Fit:
        """offline.training.fit.fit_network with the run's settings and thread count; epochs shown via ``note``."""
        tensorflow(self.settings.compute.threads)  # sets the pools at the first job in this process, as they stay fixed after

        def show_epoch(epoch: int, logs: dict) -> None:
            note(epoch=epoch + 1, val_loss=f"{logs.get('val_loss', float('nan')):.4f}")

        return fit_network(arch, train, val, emotion, hyperparameters, self.settings, seed=seed, epochs=epochs,
                           patience=patience, on_epoch=show_epoch if note is not None else None)


# This process's last windows and SVM Gram matrices (in the driver, or in each Ray worker), kept for the
# next job of the same seed; one of each, so only one seed's arrays are in memory at a time.
_reused: dict[str, tuple[tuple, object]] = {}


def _reuse(kind: str, key: tuple, build: Callable[[], T]) -> T:
    held = _reused.get(kind)
    if held is None or held[0] != key:
        _reused.pop(kind, None)  # free the old arrays before building the new ones
        held = _reused[kind] = (key, build())
    return held[1]


def release_arrays() -> None:
    """Drop the kept windows and Gram matrices (the driver keeps no seed's arrays once a run is over)."""
    _reused.clear()
