"""The ``edgeemo`` command. Parsing only: each verb hands typed arguments to a function that does the work.

Offline verbs (``data``, and later ``train``, ``explain``...) import the ``offline`` package lazily, so the
runtime starts fast and works on a device that has no TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeemo import __version__
from edgeemo.errors import EdgeemoError

DEFAULT_FRAMES = 16  # P: the paper does not give it; 16 frames cover a CK+ onset (10-60 frames) well.


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_data_parser(verbs: argparse._SubParsersAction) -> None:
    data = verbs.add_parser("data", help="make or import a landmark dataset (.npz)", allow_abbrev=False)
    sources = data.add_subparsers(dest="source", metavar="SOURCE", required=True)

    synth = sources.add_parser(
        "synth", help="the built-in synthetic CK+-like set (no download)", allow_abbrev=False,
        description="Synthetic neutral-to-apex sequences on real face shapes, with FACS action units.",
    )
    synth.add_argument("--out", type=Path, default=Path("data/synth.npz"), help="dataset file to write")
    synth.add_argument("--sequences", type=_positive_int, default=574, help="neutral-to-apex sequences")
    synth.add_argument("--subjects", type=_positive_int, default=120, help="synthetic subjects")
    synth.add_argument("--test-fraction", type=float, default=87 / 574, help="share of subjects held out for test")
    synth.add_argument("--frames", type=_positive_int, default=DEFAULT_FRAMES, help="P, frames per sequence")
    synth.add_argument(
        "--windows", default="apex,offset,neutral",
        help="extra live-camera windows per sequence besides the onset: any of apex,offset,neutral, or none",
    )
    synth.add_argument("--seed", type=int, default=0)

    for name, helptext in (
        ("ckplus", "import CK+ (cohn-kanade-images/ and Emotion/ folders)"),
        ("videos", "import labelled videos: a folder per emotion, or a CSV of path,label,subject"),
    ):
        p = sources.add_parser(name, help=helptext, allow_abbrev=False)
        p.add_argument("path", type=Path, help="CK+ root folder" if name == "ckplus" else "folder or CSV file")
        p.add_argument("--out", type=Path, required=True, help="dataset file to write")
        p.add_argument("--frames", type=_positive_int, default=DEFAULT_FRAMES, help="P, frames per sequence")
        p.add_argument("--cache", type=Path, default=None, help="cache folder (default: OUT.cache/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeemo", allow_abbrev=False,
        description="Real-time, explainable emotion recognition from face-mesh landmarks.",
    )
    parser.add_argument("--version", action="version", version=f"edgeemo {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    info = verbs.add_parser("info", help="versions, ONNX Runtime providers, default model bundle", allow_abbrev=False)
    info.add_argument("--model", type=Path, default=None, help="a model bundle folder to describe")
    _add_data_parser(verbs)
    return parser


def _import_offline(module: str):
    """Import an ``offline`` module, or explain which extra is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {"offline", "tensorflow", "scipy", "sklearn", "matplotlib", "tf2onnx"}:
            raise EdgeemoError(
                f"this verb needs the offline tools ({exc.name} is missing): pip install 'edgeemo[offline]'"
            ) from None
        raise


def run(args: argparse.Namespace) -> int:
    if args.verb == "info":
        from edgeemo.info import describe

        print(describe(model=args.model))
        return 0
    if args.verb == "data":
        if args.source == "synth":
            synth = _import_offline("offline.synth")
            windows = () if args.windows.strip() == "none" else tuple(w.strip() for w in args.windows.split(","))
            synth.synthesize(
                out=args.out, sequences=args.sequences, subjects=args.subjects, test_fraction=args.test_fraction,
                frames=args.frames, windows=windows, seed=args.seed,
            )
            return 0
        importer = _import_offline(f"offline.importers.{args.source}")
        importer.import_dataset(args.path, out=args.out, frames=args.frames, cache=args.cache)
        return 0
    raise AssertionError(f"unhandled verb {args.verb}")  # argparse only lets known verbs through


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except EdgeemoError as exc:
        print(f"edgeemo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
