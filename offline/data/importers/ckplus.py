"""Import CK+ (the Extended Cohn-Kanade dataset) in its published layout.

  ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ...   frames, neutral to apex, often grayscale
  ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt          one number, e.g. "   3.0000000e+00"

Labels: 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happiness, 6 sadness, 7 surprise. Contempt is
dropped, as in the paper; sequences without an emotion file (about 270 of 593) are skipped. Subject = Sxxx.
"""

from __future__ import annotations

from pathlib import Path

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from offline.data.dataset import LandmarkDataset
from offline.data.importers.common import Item, Skipped, import_items

LABELS = ("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
LAYOUT = "expected CK+'s cohn-kanade-images/Sxxx/nnn/*.png and Emotion/Sxxx/nnn/*_emotion.txt"


def read_label(path: Path) -> str:
    """The emotion name in a CK+ ``*_emotion.txt`` file."""
    text = path.read_bytes().decode("ascii", errors="replace").strip()
    try:
        number = float(text)
    except ValueError:
        raise EdgeemoError(f"{path}: expected one CK+ emotion number like 3.0000000e+00, found {text[:40]!r}") from None
    if not number.is_integer() or not 0 <= number < len(LABELS):
        raise EdgeemoError(f"{path}: unknown CK+ emotion label {text} (expected 0..7)")
    return LABELS[int(number)]


def _visible(folder: Path) -> list[Path]:
    # Copies made on macOS hold ._* and .DS_Store files beside the real ones.
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def list_sequences(root: Path) -> tuple[list[Item], list[Skipped]]:
    images, emotions = root / "cohn-kanade-images", root / "Emotion"
    for folder in (root, images, emotions):
        if not folder.is_dir():
            raise EdgeemoError(f"{folder}: no such folder ({LAYOUT})")
    items, skipped = [], []
    for subject in filter(Path.is_dir, _visible(images)):
        for sequence in filter(Path.is_dir, _visible(subject)):
            name = f"{subject.name}/{sequence.name}"
            frames = tuple(p for p in _visible(sequence) if p.suffix.lower() == ".png")
            label_files = sorted((emotions / name).glob("*_emotion.txt"))
            if not frames:
                skipped.append(Skipped(name, "no .png frames"))
            elif not label_files:
                skipped.append(Skipped(name, "no emotion file"))
            elif len(label_files) > 1:
                raise EdgeemoError(f"{emotions / name}: {len(label_files)} emotion files, expected one")
            else:
                label = read_label(label_files[0])
                if label in EMOTIONS:
                    items.append(Item(name, frames, EMOTIONS.index(label), subject.name, video=False))
                else:
                    skipped.append(Skipped(name, f"labelled {label} (not one of the six emotions)"))
    return items, skipped


def import_dataset(path: Path, out: Path, frames: int = 16, cache: Path | None = None) -> LandmarkDataset:
    items, skipped = list_sequences(path)
    source = f"CK+ at {path} (cohn-kanade-images/, Emotion/); contempt dropped, unlabelled sequences skipped"
    return import_items(items, skipped, root=path, out=out, frames=frames, cache=cache, source=source)
