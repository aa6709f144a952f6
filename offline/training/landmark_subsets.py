"""Which landmarks each emotion's model sees: all 468, or the top K of a ranking file.

A ranking file is JSON written by the explainability step:
``{"emotions": {"anger": [468 landmark indices, most important first], ...}}``, and optionally
``"subjects"``: the people whose data made it (whose windows trained the explained models or were
explained), and ``"seeds": {"0": {"emotions": {...}, "subjects": [...]}, ...}``: each seed's ranking from
that seed's own model alone, with its people.

A model is never tested on people its ranking was made from (``rankings_for_seeds``): a seed takes the
file's ranking when none of its test people made it (a fixed split: every seed's models trained on the
same non-test people), else its own ranking from ``seeds``. Files without ``subjects`` (made elsewhere) are
taken as they are.
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
    return _rankings(_read(path), "emotions", emotions, ks, path)


def rankings_for_seeds(path: str | Path, emotions: tuple[str, ...], ks: tuple[int, ...],
                       test_subjects: dict[int, set[str]]) -> dict[int, dict[str, np.ndarray]]:
    """The rankings each seed's models take their landmarks from, none made from that seed's test people.

    ``test_subjects``: each seed's test people. A seed takes the file's ranking unless the file names people
    it was made from (``subjects``) among that seed's test people; then its own ranking (``seeds.<seed>``),
    refused if missing or made from its test people too.
    """
    path = Path(path)
    raw = _read(path)
    pooled = _rankings(raw, "emotions", emotions, ks, path)
    chosen = {}
    for seed, tested in sorted(test_subjects.items()):
        seen = set(raw.get("subjects") or ()) & tested
        if not seen:
            chosen[seed] = pooled
            continue
        own = (raw.get("seeds") or {}).get(str(seed))
        if not isinstance(own, dict):
            raise EdgeemoError(
                f"{path}: made from people seed {seed} is tested on ({sorted(seen)[0]!r}, field subjects) and no "
                f"ranking of seed {seed}'s own (field seeds.{seed}); explain the run with --models all"
            )
        seen = set(own.get("subjects", tested)) & tested  # without the record it cannot be shown clean
        if seen:
            raise EdgeemoError(f"{path}: field seeds.{seed}.subjects: seed {seed}'s own ranking is not shown to be "
                               f"made without its test people ({sorted(seen)[0]!r})")
        chosen[seed] = _rankings(own, f"seeds.{seed}.emotions", emotions, ks, path)
    return chosen


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


def _read(path: Path) -> dict:
    if not path.is_file():
        raise EdgeemoError(f"--landmarks: no such ranking file {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EdgeemoError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise EdgeemoError(f"{path}: field emotions is missing (expected {{\"emotions\": {{\"anger\": [...], ...}}}})")
    return raw


def _rankings(raw: dict, field: str, emotions: tuple[str, ...], ks: tuple[int, ...],
              path: Path) -> dict[str, np.ndarray]:
    """``raw["emotions"]`` (``field`` names it in errors), checked for the emotions and K values to train."""
    table = raw.get("emotions")
    if not isinstance(table, dict):
        raise EdgeemoError(f"{path}: field {field} is missing (expected {{\"emotions\": {{\"anger\": [...], ...}}}})")
    unknown = sorted(set(table) - set(EMOTIONS))
    if unknown:
        raise EdgeemoError(f"{path}: field {field}.{unknown[0]} is not an emotion ({', '.join(EMOTIONS)})")
    return {emotion: _ranking(table, emotion, max(ks), path, field) for emotion in emotions}


def _ranking(table: dict, emotion: str, k: int, path: Path, field: str = "emotions") -> np.ndarray:
    if emotion not in table:
        raise EdgeemoError(f"{path}: field {field}.{emotion} is missing")
    values = table[emotion]
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise EdgeemoError(f"{path}: field {field}.{emotion} must be a list of landmark indices")
    order = np.asarray(values, dtype=np.int64)
    if order.size and (order.min() < 0 or order.max() >= N_LANDMARKS):
        raise EdgeemoError(f"{path}: field {field}.{emotion} holds indices outside 0..{N_LANDMARKS - 1}")
    if len(np.unique(order)) != len(order):
        raise EdgeemoError(f"{path}: field {field}.{emotion} repeats a landmark index")
    if k > len(order):
        raise EdgeemoError(f"--k {k}: larger than the {len(order)} landmarks ranked for {emotion} in {path}")
    return order
