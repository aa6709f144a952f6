"""Which landmarks each emotion's model sees: all 468, or the top K of a ranking file.

A ranking file is JSON written by the explainability step:
``{"emotions": {"anger": [468 landmark indices, most important first], ...}}``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS

ALL_LANDMARKS = np.arange(N_LANDMARKS)


def load_ranking(path: str | Path, emotions: tuple[str, ...], ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Each emotion's ranking from the file, checked for the emotions and K values about to be trained."""
    path = Path(path)
    if not path.is_file():
        raise EdgeemoError(f"--landmarks: no such ranking file {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EdgeemoError(f"{path}: not valid JSON ({exc})") from None
    table = raw.get("emotions") if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise EdgeemoError(f"{path}: field emotions is missing (expected {{\"emotions\": {{\"anger\": [...], ...}}}})")
    unknown = sorted(set(table) - set(EMOTIONS))
    if unknown:
        raise EdgeemoError(f"{path}: field emotions.{unknown[0]} is not an emotion ({', '.join(EMOTIONS)})")
    return {emotion: _ranking(table, emotion, max(ks), path) for emotion in emotions}


def ranking_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def select(ranking: dict[str, np.ndarray] | None, emotion: str, k: int) -> np.ndarray:
    """The K landmark indices an emotion's model sees, in mesh-index order.

    Sorted, not in rank order: the model is the same either way with a one-landmark kernel, and with a
    wider kernel mesh order keeps neighbours that are often neighbours on the face too.
    """
    if k == N_LANDMARKS:
        return ALL_LANDMARKS
    if ranking is None:
        raise EdgeemoError(f"--k {k}: fewer than {N_LANDMARKS} landmarks need a ranking file in --landmarks")
    return np.sort(ranking[emotion][:k])


def _ranking(table: dict, emotion: str, k: int, path: Path) -> np.ndarray:
    if emotion not in table:
        raise EdgeemoError(f"{path}: field emotions.{emotion} is missing")
    values = table[emotion]
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise EdgeemoError(f"{path}: field emotions.{emotion} must be a list of landmark indices")
    order = np.asarray(values, dtype=np.int64)
    if order.size and (order.min() < 0 or order.max() >= N_LANDMARKS):
        raise EdgeemoError(f"{path}: field emotions.{emotion} holds indices outside 0..{N_LANDMARKS - 1}")
    if len(np.unique(order)) != len(order):
        raise EdgeemoError(f"{path}: field emotions.{emotion} repeats a landmark index")
    if k > len(order):
        raise EdgeemoError(f"--k {k}: larger than the {len(order)} landmarks ranked for {emotion} in {path}")
    return order
