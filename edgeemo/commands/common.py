"""Argument types and the lazy import of offline code shared by the verbs."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from types import ModuleType

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError

DEFAULT_FRAMES = 16  # P: the paper does not give it; 16 frames cover a CK+ onset (10-60 frames) well.

# Top-level modules that only the offline extra installs.
_OFFLINE_MODULES = {"offline", "tensorflow", "keras", "tf2onnx", "onnx", "scipy", "sklearn", "matplotlib", "ray"}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def k_list(text: str) -> tuple[int, ...]:
    """``64`` or ``234,128,64``: landmark counts."""
    return tuple(positive_int(part.strip()) for part in text.split(","))


def emotion_list(text: str) -> tuple[str, ...]:
    """``anger,fear``: a subset of the six emotions."""
    names = tuple(part.strip().lower() for part in text.split(","))
    unknown = [n for n in names if n not in EMOTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown emotion {unknown[0]!r} (expected {', '.join(EMOTIONS)})")
    return names


def given_file(path: Path | None, flag: str) -> Path | None:
    """A file the user named with ``flag``, which must exist; None (the flag not given) stays None, which
    means the built-in default (package data)."""
    if path is not None and not path.is_file():
        raise EdgeemoError(f"{flag} {path}: no such file")
    return path


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """Where training jobs run, and with how many TensorFlow threads (train and select)."""
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--workers", type=positive_int, default=cores, metavar="N",
        help=f"jobs at a time, on local Ray worker processes; 1 runs them one by one in this process, without "
        f"Ray (default: one per core, {cores} here; on 2 cores as fast as one process on 2 threads, see README)",
    )
    parser.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="run the jobs on the Ray cluster whose head is at HOST:PORT; the run folder stays here")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="TensorFlow threads per job, wherever it runs (default: the settings', 1). A "
                        "network's weights depend on it, so results change with it, never with --workers")


def training_settings(args: argparse.Namespace):
    """train's and select's settings: the file (--config, --quick) with --threads applied."""
    config = import_offline("offline.training.train_config")
    settings = config.load_settings(given_file(args.config, "--config"), quick=args.quick)
    return settings if args.threads is None else config.with_threads(settings, args.threads)


def import_offline(module: str) -> ModuleType:
    """Import an ``offline`` module, or say which extra to install when its dependencies are missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing in _OFFLINE_MODULES or (missing.split(".")[0] in _OFFLINE_MODULES - {"offline"}):
            raise EdgeemoError(
                f"'{module}' needs the offline tools ({exc.name} is not installed): pip install 'edgeemo[offline]'"
            ) from None
        raise
