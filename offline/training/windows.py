"""The arrays a job trains and tests on: one seed's split of the dataset, mirrored training windows,
and one emotion's labels and landmark subset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.face import mirror_points
from offline.data.dataset import LandmarkDataset
from offline.data.splits import Split
from offline.training.evaluate import binary_labels


@dataclass(frozen=True)
class Windows:
    """Windows [n, P, 2, L] of one part of a split, with their dataset index, y and segment."""

    index: np.ndarray
    x: np.ndarray
    y: np.ndarray
    segment: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def labels(self, emotion: str) -> np.ndarray:
        return binary_labels(self.y, self.segment, EMOTIONS.index(emotion))

    def take_landmarks(self, landmarks: np.ndarray) -> "Windows":
        """The same windows with only the given landmarks (no copy when that is all of them, in order)."""
        if len(landmarks) == self.x.shape[-1] and np.array_equal(landmarks, np.arange(self.x.shape[-1])):
            return self
        return Windows(self.index, np.ascontiguousarray(self.x[..., landmarks]), self.y, self.segment)

    def model_input(self) -> np.ndarray:
        """[n, P, 2, L, 1]: the networks' one-channel input."""
        return self.x[..., None]


@dataclass(frozen=True)
class SeedWindows:
    train: Windows  # the training segments, then their mirror images when mirroring is on
    val: Windows  # the training segments of the validation subjects
    test: Windows  # every window of the test subjects: the protocols choose among them

    @classmethod
    def build(cls, dataset: LandmarkDataset, split: Split, segments: tuple[str, ...], mirror: bool) -> "SeedWindows":
        train = _windows(dataset, _of_segments(dataset, split.train, segments))
        if mirror:
            train = Windows(
                np.concatenate([train.index, train.index]), np.concatenate([train.x, _mirror(train.x)]),
                np.concatenate([train.y, train.y]), np.concatenate([train.segment, train.segment]),
            )
        return cls(train, _windows(dataset, _of_segments(dataset, split.val, segments)), _windows(dataset, split.test))


def training_labels(dataset: LandmarkDataset, split: Split, segments: tuple[str, ...], emotion: str) -> np.ndarray:
    """The binary labels of a split's training windows, without touching X (for early checks)."""
    index = _of_segments(dataset, split.train, segments)
    return binary_labels(dataset.y[index], dataset.segment[index], EMOTIONS.index(emotion))


def _of_segments(dataset: LandmarkDataset, index: np.ndarray, segments: tuple[str, ...]) -> np.ndarray:
    return index[np.isin(dataset.segment[index], segments)]


def _windows(dataset: LandmarkDataset, index: np.ndarray) -> Windows:
    return Windows(index, dataset.X[index], dataset.y[index], dataset.segment[index])


def _mirror(x: np.ndarray) -> np.ndarray:
    # The dataset keeps [..., 2, 468] and mirror_points takes [..., 468, 2]. Mirror all 468 landmarks
    # before any subset is taken: mirroring moves each landmark's motion to its left/right twin.
    return np.swapaxes(mirror_points(np.swapaxes(x, -1, -2)), -1, -2).astype(np.float32)
