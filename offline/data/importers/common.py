"""What every importer shares: the sequence list, the resumable landmark cache, the loop and its summary.

An importer only lists its sequences (``Item``) and the ones it leaves out with a reason; ``import_items``
extracts landmarks (or reads them from the cache), makes one sample per sequence and writes the dataset.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeemo.emotions import NEUTRAL_INDEX
from edgeemo.errors import EdgeemoError
from edgeemo.io import atomic_save_npz
from edgeemo.landmarker import FaceMeshLandmarker
from edgeemo.normalize import NORMALIZATION
from offline.data.dataset import LandmarkDataset
from offline.data.extract import Extraction, extract_images, extract_video, to_sample

EXTRACTOR = f"mediapipe {version('mediapipe')} face_mesh tracking"
NO_FACE = "no face found in any frame"
IMAGE_FPS = 30.0  # CK+ was filmed at 30 fps; image folders say nothing of their rate


@dataclass(frozen=True)
class Item:
    """One sequence to import."""

    name: str  # unique within the source, e.g. "S005/001" or "anger/ann_1.mp4"; the dataset's `source`
    files: tuple[Path, ...]  # one video file, or the frames of an image sequence
    label: int  # index into EMOTIONS, or NEUTRAL_INDEX
    subject: str
    video: bool


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str  # short and shared by like items, so that the summary can count them


class ExtractionCache:
    """One small .npz per sequence (raw pixel landmarks, found mask, fps) under ``folder``.

    An entry holds a key made of the extractor and the name, size and modification time of each input file;
    an entry whose key differs (a file changed, MediaPipe upgraded) is extracted again and overwritten.
    """

    def __init__(self, folder: Path) -> None:
        if folder.exists() and not folder.is_dir():
            raise EdgeemoError(f"--cache: {folder} is not a folder")
        self.folder = folder
        self.hits = 0  # entries read back: each is a sequence MediaPipe did not have to run on

    def _path(self, item: Item) -> Path:
        # Readable, and unique: "a/b" and "a_b" would clean up to the same name without the hash.
        readable = re.sub(r"[^A-Za-z0-9.-]+", "_", item.name)[-80:]
        return self.folder / f"{readable}-{hashlib.sha1(item.name.encode()).hexdigest()[:10]}.npz"

    @staticmethod
    def key(item: Item) -> str:
        files = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in item.files]
        return hashlib.sha256(json.dumps([EXTRACTOR, item.video, files]).encode()).hexdigest()

    def load(self, item: Item) -> Extraction | None:
        path = self._path(item)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != self.key(item):
                    return None
                extraction = Extraction(data["points"], data["found"], float(data["fps"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None  # unreadable entry (e.g. from an older edgeemo): extract again and overwrite it
        self.hits += 1
        return extraction

    def save(self, item: Item, extraction: Extraction) -> None:
        atomic_save_npz(
            self._path(item), key=np.array(self.key(item)), points=extraction.points, found=extraction.found,
            fps=np.array(extraction.fps),
        )


def subject_from_file_name(path: Path) -> str:
    """The file name's prefix before the first '_' or '-' ("ann_smile_2.mp4" -> "ann"), else its stem."""
    return re.split(r"[_-]", path.stem, maxsplit=1)[0] or path.stem


def import_items(items: list[Item], skipped: list[Skipped], root: Path, out: Path, frames: int,
                 cache: Path | None, source: str) -> LandmarkDataset:
    """Extract (or read from the cache) each item, make its sample, write the dataset to ``out``, print a summary.

    Sequences with no face in any frame are skipped and counted; when no sequence is left, EdgeemoError names
    ``root`` and the first reason. ``out`` is written in one rename: a failure leaves any earlier file as it was.
    """
    if out.is_dir():
        raise EdgeemoError(f"--out: {out} is a folder, expected a dataset file (.npz)")
    store = ExtractionCache(cache if cache is not None else out.with_name(out.name + ".cache"))
    skipped = list(skipped)
    samples, used, lengths, rates = [], [], [], []
    frames_no_face = 0
    landmarker = None  # made at the first cache miss: a fully cached run never loads MediaPipe
    try:
        for item in tqdm(items, desc=f"landmarks {root.name}", unit="seq", disable=None):
            extraction = store.load(item)
            if extraction is None:
                if landmarker is None:
                    landmarker = FaceMeshLandmarker(static=False)
                extract = extract_video if item.video else extract_images
                extraction = extract(item.files[0] if item.video else item.files, landmarker)
                store.save(item, extraction)
            if not extraction.found.any():
                skipped.append(Skipped(item.name, NO_FACE))
                continue
            samples.append(to_sample(extraction, frames, item.name))
            used.append(item)
            lengths.append(len(extraction.found))
            rates.append(extraction.fps)
            frames_no_face += extraction.frames_no_face
    finally:
        if landmarker is not None:
            landmarker.close()
    if not samples and not skipped:
        raise EdgeemoError(f"{root}: no sequences found")
    if not samples:
        first = skipped[0]
        raise EdgeemoError(f"{root}: no usable sequence, {len(skipped)} skipped (first: {first.name}: {first.reason})")

    labels = np.array([item.label for item in used])
    dataset = LandmarkDataset(
        X=np.stack(samples),
        y=labels,
        subject=[item.subject for item in used],
        source=[item.name for item in used],
        segment=np.where(labels == NEUTRAL_INDEX, "neutral", "onset"),
        split=np.full(len(used), ""),  # training makes the subject splits
        meta={
            "P": frames,
            "frame_stride": "resampled",  # each whole sequence is resampled to P frames
            # The camera rate the runtime's window assumes: the videos' own (median), else CK+'s 30 fps (an
            # image sequence does not record its rate).
            "fps": float(np.median([r for r in rates if r > 0])) if any(r > 0 for r in rates) else IMAGE_FPS,
            "source_frames": {"min": min(lengths), "median": float(np.median(lengths)), "max": max(lengths)},
            "normalization": NORMALIZATION,
            "extractor": EXTRACTOR,
            "source": source,
            "frames_total": int(sum(lengths)),
            "frames_no_face": frames_no_face,  # in the imported sequences, filled by interpolation in time
            "skipped": len(skipped),
            "skipped_reasons": dict(sorted(Counter(s.reason for s in skipped).items())),
        },
    )
    dataset.save(out)
    print(f"wrote {out}")
    print(dataset.summary())
    print(f"  cache: {store.hits} of {len(items)} sequences read from {store.folder}")
    _print_skipped(skipped)
    return dataset


def _print_skipped(skipped: list[Skipped]) -> None:
    names = defaultdict(list)
    for s in skipped:
        names[s.reason].append(s.name)
    for reason, which in sorted(names.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(which[:3]) + (", ..." if len(which) > 3 else "")
        print(f"  skipped {len(which)}: {reason} ({shown})")
