"""Training settings (``train.toml``) and per-emotion hyperparameter tables
(``paper_hyperparameters.toml``, or the ``best.json`` a grid search writes).

The built-in defaults are package data in ``offline/resources/configs``, so an installed wheel has them too;
``--config FILE`` and ``--hyperparameters FILE`` replace them.

Every key of the settings file is required and checked here, so a typo fails at start with the file
and key named, not after hours of training.
"""

from __future__ import annotations

import json
import math
import tomllib
import typing
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from offline.data.dataset import SEGMENTS

# Found through the package, not this file, so it holds wherever this module moves inside ``offline``.
CONFIGS = Path(str(resources.files("offline") / "resources" / "configs"))
TRAIN_CONFIG = CONFIGS / "train.toml"
PAPER_HYPERPARAMETERS = CONFIGS / "paper_hyperparameters.toml"


@dataclass(frozen=True)
class TrainSection:
    learning_rate: float
    batch_size: int
    validation_fraction: float
    test_fraction: float
    epochs: int
    patience: int
    seeds: int
    mirror: bool
    segments: tuple[str, ...]
    subject_fraction: float


@dataclass(frozen=True)
class ModelSection:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dropout: float
    standardize: bool


@dataclass(frozen=True)
class EvaluateSection:
    threshold: float


@dataclass(frozen=True)
class SvmSection:
    c: float


@dataclass(frozen=True)
class GridSection:
    filters: tuple[int, ...]
    lstm_units: tuple[int, ...]
    dense_units: tuple[int, ...]
    epochs: int
    patience: int


@dataclass(frozen=True)
class ComputeSection:
    threads: int


class Hyperparameters(NamedTuple):
    filters: int  # F
    lstm_units: int  # Q
    dense_units: int  # R


@dataclass(frozen=True)
class Settings:
    train: TrainSection
    model: ModelSection
    evaluate: EvaluateSection
    svm: SvmSection
    grid: GridSection
    compute: ComputeSection
    # Quick mode's one set of F, Q, R for every emotion and K; None: use the tables.
    hyperparameters: Hyperparameters | None = None

    def results_relevant(self) -> dict:
        """The settings that change what a run's jobs compute: a resumed run must match them.
        Threads do not, and the number of seeds only says how many jobs there are."""
        values = asdict(self)
        values.pop("compute")
        values["train"].pop("seeds")
        return json.loads(json.dumps(values))  # tuples as lists, as they read back from config.json


_SECTIONS = {
    "train": TrainSection, "model": ModelSection, "evaluate": EvaluateSection, "svm": SvmSection,
    "grid": GridSection, "compute": ComputeSection,
}


def load_settings(path: str | Path | None = None, quick: bool = False) -> Settings:
    """Read a settings file; with ``quick``, its ``[quick.<section>]`` tables override the sections."""
    path = Path(path) if path is not None else TRAIN_CONFIG
    raw = _read_toml(path)
    quick_tables = raw.pop("quick", {})
    unknown = sorted(set(raw) - set(_SECTIONS)) + [f"quick.{k}" for k in sorted(set(quick_tables) - set(_SECTIONS))
                                                   if k != "hyperparameters"]
    if unknown:
        raise EdgeemoError(f"{path}: unknown section [{unknown[0]}]")
    sections = {}
    for name, cls in _SECTIONS.items():
        table = dict(raw.get(name, {}))
        if quick:
            table.update(quick_tables.get(name, {}))
        sections[name] = _section(cls, table, f"{path}: [{name}]")
    fixed = None
    if quick and "hyperparameters" in quick_tables:
        fixed = _section(Hyperparameters, quick_tables["hyperparameters"], f"{path}: [quick.hyperparameters]")
    settings = Settings(**sections, hyperparameters=fixed)
    _check(settings, path)
    return settings


def with_threads(settings: Settings, threads: int) -> Settings:
    """The settings with TensorFlow's thread count from the command line."""
    if threads < 1:
        raise EdgeemoError(f"--threads {threads}: must be 1 or more")
    return replace(settings, compute=ComputeSection(threads))


def load_hyperparameters(path: str | Path | None = None) -> dict[int, dict[str, Hyperparameters]]:
    """A table {K: {emotion: Hyperparameters}} from a TOML or JSON file with sections ``k<K>``."""
    path = Path(path) if path is not None else PAPER_HYPERPARAMETERS
    raw = _read_toml(path) if path.suffix == ".toml" else _read_json(path)
    table: dict[int, dict[str, Hyperparameters]] = {}
    for key, rows in raw.items():
        if not (key.startswith("k") and key[1:].isdigit()):
            raise EdgeemoError(f"{path}: section {key!r} is not k<number of landmarks>, e.g. k234")
        table[int(key[1:])] = {}
        for emotion, row in rows.items():
            if emotion not in EMOTIONS:
                raise EdgeemoError(f"{path}: [{key}] unknown emotion {emotion!r}")
            table[int(key[1:])][emotion] = _section(Hyperparameters, row, f"{path}: [{key}].{emotion}")
    if not table:
        raise EdgeemoError(f"{path}: no k<K> sections")
    return table


def hyperparameters_for(table: dict[int, dict[str, Hyperparameters]], k: int, emotion: str,
                        where: str = "hyperparameters") -> tuple[Hyperparameters, int]:
    """F, Q, R for an emotion at K, and the K of the table they came from: K's own, else the nearest
    (ties go to the larger K) — the paper has no K = 468 table, so 468 takes 234's."""
    with_emotion = sorted(k_ for k_, rows in table.items() if emotion in rows)
    if not with_emotion:
        raise EdgeemoError(f"{where}: no hyperparameters for emotion {emotion!r}")
    source = min(with_emotion, key=lambda k_: (abs(k_ - k), -k_))
    return table[source][emotion], source


def table_to_json(table: dict[int, dict[str, Hyperparameters]]) -> dict:
    return {f"k{k}": {e: h._asdict() for e, h in rows.items()} for k, rows in sorted(table.items())}


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise EdgeemoError(f"{path}: no such file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise EdgeemoError(f"{path}: not valid TOML ({exc})") from None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise EdgeemoError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EdgeemoError(f"{path}: not valid JSON ({exc})") from None


def _section(cls: type, table: dict, where: str):
    """Build a settings dataclass or NamedTuple from a TOML table, checking every key and type."""
    if not isinstance(table, dict):
        raise EdgeemoError(f"{where}: expected a table of settings, got {table!r}")
    hints = typing.get_type_hints(cls)
    unknown = set(table) - set(hints)
    if unknown:
        raise EdgeemoError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    missing = [name for name in hints if name not in table]
    if missing:
        raise EdgeemoError(f"{where}: setting {missing[0]!r} is missing")
    return cls(**{name: _convert(table[name], hints[name], f"{where} {name}") for name in hints})


def _convert(value, kind, where: str):
    if kind is bool:
        if not isinstance(value, bool):
            raise EdgeemoError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EdgeemoError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise EdgeemoError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise EdgeemoError(f"{where}: expected a string, got {value!r}")
        return value
    item = typing.get_args(kind)[0]  # tuple[X, ...]
    if not isinstance(value, list) or not value:
        raise EdgeemoError(f"{where}: expected a non-empty list, got {value!r}")
    return tuple(_convert(v, item, where) for v in value)


def _check(settings: Settings, path: Path) -> None:
    t, m, g = settings.train, settings.model, settings.grid
    rules = [
        ("train learning_rate", t.learning_rate > 0, "must be positive"),
        ("train validation_fraction", 0 < t.validation_fraction < 1, "must be between 0 and 1"),
        ("train test_fraction", 0 < t.test_fraction < 1, "must be between 0 and 1"),
        ("train subject_fraction", 0 < t.subject_fraction <= 1, "must be in (0, 1]"),
        ("train segments", set(t.segments) <= set(SEGMENTS), f"must be among {', '.join(SEGMENTS)}"),
        ("model kernel", len(m.kernel) == 2 and m.kernel[0] in (1, 2) and m.kernel[1] >= 1,
         "must be [1 or 2, width >= 1]"),
        ("model stride", len(m.stride) == 2 and min(m.stride) >= 1, "must be two integers >= 1"),
        ("model dropout", 0 <= m.dropout < 1, "must be in [0, 1)"),
        ("evaluate threshold", 0 < settings.evaluate.threshold < 1, "must be between 0 and 1"),
        ("svm c", settings.svm.c > 0, "must be positive"),
        ("compute threads", settings.compute.threads >= 1, "must be 1 or more"),
    ]
    positive = [("train batch_size", t.batch_size), ("train epochs", t.epochs), ("train patience", t.patience),
                ("train seeds", t.seeds), ("grid epochs", g.epochs),
                ("grid patience", g.patience)]
    positive += [(f"grid {name}", min(getattr(g, name))) for name in ("filters", "lstm_units", "dense_units")]
    rules += [(name, value >= 1, "must be at least 1") for name, value in positive]
    if settings.hyperparameters is not None:
        rules.append(("quick.hyperparameters", min(settings.hyperparameters) >= 1, "must be at least 1"))
    for name, ok, rule in rules:
        if not ok:
            raise EdgeemoError(f"{path}: {name} {rule}")
