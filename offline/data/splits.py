"""Subject-disjoint train / validation / test splits, one per seed.

No subject is ever in two parts of a split: windows of one person are alike, and a model tested on a
person it was trained on looks better than it is. When the dataset carries a split (the paper's
487/87), its test subjects are the test set of every seed and each seed draws its own validation
subjects; otherwise each seed also draws its own test subjects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeemo.errors import EdgeemoError
from offline.data.dataset import LandmarkDataset

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    seed: int
    train: np.ndarray  # int64 indices into the dataset, sorted
    val: np.ndarray
    test: np.ndarray

    def to_json(self, dataset: LandmarkDataset) -> dict:
        parts = {p: getattr(self, p) for p in PARTS}
        return {
            "seed": self.seed,
            "indices": {p: idx.tolist() for p, idx in parts.items()},
            "subjects": {p: sorted(set(dataset.subject[idx].tolist())) for p, idx in parts.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> "Split":
        return cls(int(data["seed"]), *(np.asarray(data["indices"][p], dtype=np.int64) for p in PARTS))


def make_split(dataset: LandmarkDataset, seed: int, validation_fraction: float, test_fraction: float,
               within: np.ndarray | None = None) -> Split:
    """Seeded subject-disjoint split; fractions are shares of windows, reached by whole subjects.

    ``within``: indices of the windows to split (default: all); the split's indices are the dataset's.
    """
    if within is not None:
        inner = make_split(dataset.subset(within), seed, validation_fraction, test_fraction)
        return Split(seed, within[inner.train], within[inner.val], within[inner.test])
    rng = np.random.default_rng(seed)
    fixed_test = set(dataset.subject[dataset.split == "test"].tolist())
    if fixed_test:
        test_subjects = fixed_test
    else:
        test_subjects = _draw_subjects(dataset.subject, sorted(set(dataset.subject.tolist())), test_fraction, rng)
    pool = sorted(set(dataset.subject.tolist()) - test_subjects)
    val_subjects = _draw_subjects(dataset.subject, pool, validation_fraction, rng)
    train_subjects = set(pool) - val_subjects
    if not (train_subjects and val_subjects and test_subjects):
        raise EdgeemoError(
            f"data: field subject has {len(set(dataset.subject.tolist()))} subjects, too few for "
            "subject-disjoint train, validation and test sets"
        )
    where = {p: np.flatnonzero(np.isin(dataset.subject, sorted(s)))
             for p, s in zip(PARTS, (train_subjects, val_subjects, test_subjects))}
    return Split(seed, where["train"], where["val"], where["test"])


def subject_sample(dataset: LandmarkDataset, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of the windows of about ``fraction`` of the subjects (of the test and the other subjects
    alike, so a fixed split stays in proportion), at least 3 of the others and 1 of the test subjects."""
    if fraction >= 1:
        return np.arange(len(dataset))
    rng = np.random.default_rng(seed)
    test = sorted(set(dataset.subject[dataset.split == "test"].tolist()))
    rest = sorted(set(dataset.subject.tolist()) - set(test))
    keep = []
    for group, least in ((test, 1), (rest, 3)):
        if group:
            count = min(len(group), max(least, round(fraction * len(group))))
            keep += rng.choice(group, size=count, replace=False).tolist()
    return np.flatnonzero(np.isin(dataset.subject, keep))


def check_disjoint(dataset: LandmarkDataset, split: Split, where: str) -> None:
    """Refuse a split (e.g. one read back from a run folder) that puts a subject in two parts."""
    subjects = {p: set(dataset.subject[getattr(split, p)].tolist()) for p in PARTS}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = subjects[a] & subjects[b]
        if shared:
            raise EdgeemoError(f"{where}: subject {sorted(shared)[0]!r} is in both {a} and {b}")


def _draw_subjects(subject: np.ndarray, candidates: list[str], fraction: float, rng: np.random.Generator) -> set[str]:
    """Random subjects until their windows reach ``fraction`` of the candidates' windows (at least one)."""
    if len(candidates) < 2:
        return set()
    counts = dict(zip(*np.unique(subject[np.isin(subject, candidates)], return_counts=True)))
    goal = fraction * sum(counts.values())
    chosen: set[str] = set()
    total = 0
    for name in rng.permutation(candidates).tolist():
        if chosen and total + counts[name] / 2 > goal:
            break  # stop at the subject that would overshoot the goal by more than half its windows
        chosen.add(name)
        total += counts[name]
        if len(chosen) == len(candidates) - 1:
            break  # always leave someone for the other parts
    return chosen
