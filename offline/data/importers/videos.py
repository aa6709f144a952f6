"""Import labelled videos, each one sequence from neutral to the expression, in one of two layouts.

A folder with one sub-folder per emotion (anger/, disgust/, fear/, happiness/, sadness/, surprise/, and
neutral/ if you have neutral clips), each holding video files. The subject is the file name's prefix before
the first '_' or '-' ("ann_smile_2.mp4" and "ann-3.avi" are subject "ann"), else the whole stem. Files
without a video extension are skipped and counted.

Or a CSV file with the header ``path,label,subject``; paths are relative to the CSV's folder.

Videos in which no face is found in any frame are skipped and counted in the summary.
"""

from __future__ import annotations

import csv
from pathlib import Path

from edgeemo.emotions import emotion_index
from edgeemo.errors import EdgeemoError
from offline.data.dataset import LandmarkDataset
from offline.data.importers.common import Item, Skipped, import_items, subject_from_file_name

VIDEO_SUFFIXES = {".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
CSV_COLUMNS = ("path", "label", "subject")


def list_folder(root: Path) -> tuple[list[Item], list[Skipped]]:
    items, skipped = [], []
    for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if not folder.is_dir():
            skipped.append(Skipped(folder.name, "not in an emotion folder"))
            continue
        label = emotion_index(folder.name, where=f"{folder} (folder name)")
        for video in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
            name = f"{folder.name}/{video.name}"
            if video.is_file() and video.suffix.lower() in VIDEO_SUFFIXES:
                items.append(Item(name, (video,), label, subject_from_file_name(video), video=True))
            else:
                skipped.append(Skipped(name, "not a video file (by its extension)"))
    return items, skipped


def list_csv(table: Path) -> list[Item]:
    items = []
    try:
        with table.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise EdgeemoError(f"{table}: header lacks {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})")
            for row in reader:
                where = f"{table}:{reader.line_num}"
                path, label, subject = ((row.get(c) or "").strip() for c in CSV_COLUMNS)
                for column, value in zip(CSV_COLUMNS, (path, label, subject)):
                    if not value:
                        raise EdgeemoError(f"{where}: field {column} is empty")
                video = table.parent / path
                if not video.is_file():
                    raise EdgeemoError(f"{where}: field path: {video}: no such file")
                items.append(Item(path, (video,), emotion_index(label, f"{where}: field label"), subject, video=True))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EdgeemoError(f"{table}: not a readable CSV file ({exc})") from None
    return items


def import_dataset(path: Path, out: Path, frames: int = 16, cache: Path | None = None) -> LandmarkDataset:
    if path.is_dir():
        items, skipped = list_folder(path)
        source = f"labelled videos in emotion folders at {path}"
    elif path.is_file() and path.suffix.lower() == ".csv":
        items, skipped = list_csv(path), []
        source = f"labelled videos listed in {path}"
    elif path.exists():
        raise EdgeemoError(f"{path}: expected a folder of emotion folders or a .csv file")
    else:
        raise EdgeemoError(f"{path}: no such folder or CSV file")
    return import_items(items, skipped, root=path, out=out, frames=frames, cache=cache, source=source)
