"""The landmark dataset file, the contract between importers, the generator and training.

The contract (arrays, types, versions, what readers do with what they do not know) is
docs/contracts/dataset.md; this module is its reader and writer. ``.npz`` arrays, in short:
  X        float32 [N, P, 2, 468]  x and y of every landmark, normalised per frame (edgeemo.normalize)
  y        int8    [N]             emotion index into EMOTIONS; -1 (neutral) only in "neutral" windows
  subject  str     [N]             who; splits are made by subject, never by sample
  source   str     [N]             where the sequence came from (file, folder or generator id)
  segment  str     [N]             "onset", "apex", "offset" or "neutral" (optional: default "onset")
  split    str     [N]             "train", "test", or "" (optional: default "")
  meta     str                     JSON: P, frame_stride, normalization, extractor, how it was made;
                                   fps (optional): the camera frame rate the windows assume, which an
                                   export states in the bundle as frame_interval_s (absent: 30);
                                   representation (optional, absent: "absolute"): "rest-relative/v1" when
                                   X holds each face relative to its rest (edgeemo.calibration.rest_relative),
                                   with rest_estimator, the RestSettings dict that found those rests
  schema_version  int              1, or 2 for rest-relative data (a version-1 reader would take those
                                   displacements for absolute faces); optional: a file without it is version 1
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeemo.calibration import ABSOLUTE, REPRESENTATIONS, RestSettings
from edgeemo.emotions import EMOTIONS, NEUTRAL_INDEX, emotion_name
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS
from edgeemo.io import atomic_save_npz

SEGMENTS = ("onset", "apex", "offset", "neutral")
SPLITS = ("train", "test", "")
REQUIRED_META = ("P", "frame_stride", "normalization", "extractor")
# Raised when a reader of an older version could misread a file (docs/contracts/dataset.md); files
# written before the version was stored have the version 1 layout, so a missing version reads as 1.
# 2: X may hold faces relative to each person's rest (meta representation). Absolute data is still written
# as 1, so that older readers keep reading it.
SCHEMA_VERSION = 2


@dataclass
class LandmarkDataset:
    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    source: np.ndarray
    segment: np.ndarray
    split: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.y)
        self.X = np.asarray(self.X, dtype=np.float32).reshape((-1,) + np.shape(self.X)[1:])
        self.y = np.asarray(self.y, dtype=np.int8)
        self.subject = np.asarray(self.subject, dtype=str).reshape(n)
        self.source = np.asarray(self.source, dtype=str).reshape(n)
        self.segment = np.asarray(self.segment, dtype=str).reshape(n)
        self.split = np.asarray(self.split, dtype=str).reshape(n)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def frames(self) -> int:
        return self.X.shape[1]

    @property
    def representation(self) -> str:
        """What X holds: "absolute" normalised faces, or "rest-relative/v1" (edgeemo.calibration)."""
        return self.meta.get("representation", ABSOLUTE)

    @property
    def schema_version(self) -> int:
        """The lowest version that reads this data right: 1 for absolute faces, 2 once they are rest-relative."""
        return 1 if self.representation == ABSOLUTE else SCHEMA_VERSION

    def validate(self, where: str = "dataset") -> None:
        """Raise EdgeemoError naming the first field that breaks the contract."""
        n = len(self.y)
        if self.X.ndim != 4 or self.X.shape[0] != n or self.X.shape[2] != 2 or self.X.shape[3] != N_LANDMARKS:
            raise EdgeemoError(f"{where}: field X has shape {self.X.shape}, expected [N={n}, P, 2, {N_LANDMARKS}]")
        if not np.isfinite(self.X).all():
            bad = int((~np.isfinite(self.X)).any(axis=(1, 2, 3)).sum())
            raise EdgeemoError(f"{where}: field X holds NaN or infinite values in {bad} sequences")
        if n and (self.y.min() < NEUTRAL_INDEX or self.y.max() >= len(EMOTIONS)):
            raise EdgeemoError(f"{where}: field y holds {int(self.y.min())}..{int(self.y.max())}, expected -1..5")
        unknown = set(self.segment) - set(SEGMENTS)
        if unknown:
            raise EdgeemoError(f"{where}: field segment holds unknown values {sorted(unknown)}")
        if ((self.y == NEUTRAL_INDEX) != (self.segment == "neutral")).any():
            raise EdgeemoError(f"{where}: field y is -1 (neutral) exactly where segment is 'neutral', and not elsewhere")
        unknown = set(self.split) - set(SPLITS)
        if unknown:
            raise EdgeemoError(f"{where}: field split holds unknown values {sorted(unknown)}")
        missing = [k for k in REQUIRED_META if k not in self.meta]
        if missing:
            raise EdgeemoError(f"{where}: field meta lacks {', '.join(missing)}")
        if self.meta["P"] != self.X.shape[1]:
            raise EdgeemoError(f"{where}: meta P={self.meta['P']} but X has {self.X.shape[1]} frames")
        if self.representation not in REPRESENTATIONS:
            raise EdgeemoError(f"{where}: meta representation is {self.representation!r}, expected one of "
                               f"{', '.join(REPRESENTATIONS)}")
        if self.representation != ABSOLUTE:
            settings = self.meta.get("rest_estimator")
            if not isinstance(settings, dict):
                raise EdgeemoError(f"{where}: meta rest_estimator is missing (rest-relative data states its estimator)")
            RestSettings.from_dict(settings, f"{where}: meta rest_estimator")
        train = set(self.subject[self.split == "train"])
        shared = train & set(self.subject[self.split == "test"])
        if shared:
            raise EdgeemoError(f"{where}: field split puts subject {sorted(shared)[0]!r} in both train and test")

    def save(self, path: str | Path) -> None:
        self.validate(str(path))
        atomic_save_npz(
            path, X=self.X, y=self.y, subject=self.subject, source=self.source, segment=self.segment,
            split=self.split, meta=np.array(json.dumps(self.meta, sort_keys=True)),
            schema_version=np.array(self.schema_version, dtype=np.int64),
        )

    @classmethod
    def load(cls, path: str | Path) -> "LandmarkDataset":
        path = Path(path)
        if not path.is_file():
            raise EdgeemoError(f"{path}: no such dataset file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise EdgeemoError(f"{path}: not a readable .npz dataset ({exc})") from None
        version = _check_version(arrays, path)
        for key in ("X", "y", "subject", "source", "meta"):
            if key not in arrays:
                raise EdgeemoError(f"{path}: field {key} is missing")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise EdgeemoError(f"{path}: field meta is not JSON ({exc})") from None
        n = len(arrays["y"])
        dataset = cls(
            X=arrays["X"], y=arrays["y"], subject=arrays["subject"], source=arrays["source"],
            segment=arrays.get("segment", np.full(n, "onset")), split=arrays.get("split", np.full(n, "")),
            meta=meta,
        )
        dataset.validate(str(path))
        if version < dataset.schema_version:
            raise EdgeemoError(f"{path}: meta representation {dataset.representation} needs schema_version "
                               f"{dataset.schema_version}, the file says {version}")
        return dataset

    def subset(self, mask: np.ndarray) -> "LandmarkDataset":
        return LandmarkDataset(
            self.X[mask], self.y[mask], self.subject[mask], self.source[mask], self.segment[mask],
            self.split[mask], dict(self.meta),
        )

    def summary(self) -> str:
        """A few lines for people: sequences per emotion and segment, subjects, splits, frames with no face."""
        lines = [f"{len(self)} sequences of {self.frames} frames, {len(set(self.subject))} subjects"]
        by_emotion = Counter((emotion_name(int(y)), s) for y, s in zip(self.y, self.segment))
        names = list(EMOTIONS) + ["neutral"]
        present = [s for s in SEGMENTS if s in set(self.segment)]
        header = f"  {'emotion':<10}" + "".join(f"{s:>9}" for s in present)
        lines.append(header)
        for name in names:
            counts = [by_emotion.get((name, s), 0) for s in present]
            if any(counts):
                lines.append(f"  {name:<10}" + "".join(f"{c:>9}" for c in counts))
        splits = Counter(self.split)
        if splits.get("train") or splits.get("test"):
            lines.append(
                f"  split: {splits.get('train', 0)} train ({len(set(self.subject[self.split == 'train']))} subjects),"
                f" {splits.get('test', 0)} test ({len(set(self.subject[self.split == 'test']))} subjects)"
            )
        for key in ("frames_total", "frames_no_face", "skipped"):
            if key in self.meta:
                lines.append(f"  {key.replace('_', ' ')}: {self.meta[key]}")
        return "\n".join(lines)


def _check_version(arrays: dict, path: Path) -> int:
    """The file's version; refuse a file from a newer edgeemo, whose layout this reader could misread (arrays
    it does not know are ignored: adding one keeps the version)."""
    if "schema_version" not in arrays:
        return 1
    value = arrays["schema_version"]
    if value.shape != () or not np.issubdtype(value.dtype, np.integer):
        raise EdgeemoError(f"{path}: field schema_version should be one integer, got {value!r}")
    version = int(value)
    if version > SCHEMA_VERSION:
        raise EdgeemoError(
            f"{path}: schema_version {version} is newer than this edgeemo reads ({SCHEMA_VERSION}): upgrade edgeemo"
        )
    if version < 1:
        raise EdgeemoError(f"{path}: schema_version {version} is not a valid version")
    return version
