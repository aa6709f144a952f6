"""``edgeemo data synth|ckplus|videos``: make or import a landmark dataset (offline extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeemo.calibration import ABSOLUTE, REPRESENTATIONS
from edgeemo.commands.common import DEFAULT_FRAMES, import_offline, positive_int


def register(verbs: argparse._SubParsersAction) -> None:
    data = verbs.add_parser("data", help="make or import a landmark dataset (.npz)", allow_abbrev=False)
    sources = data.add_subparsers(dest="source", metavar="SOURCE", required=True)

    synth = sources.add_parser(
        "synth", help="the built-in synthetic CK+-like set (no download)", allow_abbrev=False,
        description="Synthetic neutral-to-apex sequences on real face shapes, with FACS action units.",
    )
    synth.add_argument("--out", type=Path, default=Path("data/synth.npz"), help="dataset file to write")
    synth.add_argument("--sequences", type=positive_int, default=574, help="neutral-to-apex sequences")
    synth.add_argument("--subjects", type=positive_int, default=120, help="synthetic subjects")
    synth.add_argument("--test-fraction", type=float, default=87 / 574, help="share of subjects held out for test")
    synth.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, help="P, frames per sequence")
    synth.add_argument(
        "--windows", default="apex,offset,neutral",
        help="extra live-camera windows per sequence besides the onset: any of apex,offset,neutral, or none",
    )
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--action-units", choices=("hand", "ict"), default="hand",
        help="where the action units come from: hand-set fields (default) or ICT FaceKit's captured blendshapes "
             "(docs/action-units.md); both keep the smile fitted to real faces",
    )
    synth.add_argument(
        "--representation", choices=REPRESENTATIONS, default=ABSOLUTE,
        help="what the windows hold: the normalised face (absolute, the default) or the face relative to the "
             "rest the runtime's estimator finds on a lead-in filmed before each window (rest-relative/v1: the "
             "data for a calibrated bundle)",
    )
    synth.set_defaults(handler=run_synth)

    for name, helptext, path_help in (
        ("ckplus", "import CK+ (cohn-kanade-images/ and Emotion/ folders)", "CK+ root folder"),
        ("videos", "import labelled videos: a folder per emotion, or a CSV of path,label,subject", "folder or CSV"),
    ):
        p = sources.add_parser(name, help=helptext, allow_abbrev=False)
        p.add_argument("path", type=Path, help=path_help)
        p.add_argument("--out", type=Path, required=True, help="dataset file to write")
        p.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, help="P, frames per sequence")
        p.add_argument("--cache", type=Path, default=None, help="cache folder (default: OUT.cache/)")
        p.set_defaults(handler=run_import)


def run_synth(args: argparse.Namespace) -> int:
    synth = import_offline("offline.synth.synthesize")
    windows = () if args.windows.strip() == "none" else tuple(w.strip() for w in args.windows.split(","))
    synth.synthesize(
        out=args.out, sequences=args.sequences, subjects=args.subjects, test_fraction=args.test_fraction,
        frames=args.frames, windows=windows, seed=args.seed, action_units=args.action_units,
        representation=args.representation,
    )
    return 0


def run_import(args: argparse.Namespace) -> int:
    importer = import_offline(f"offline.data.importers.{args.source}")
    importer.import_dataset(args.path, out=args.out, frames=args.frames, cache=args.cache)
    return 0
