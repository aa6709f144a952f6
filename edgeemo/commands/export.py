"""``edgeemo export``: a training run's models at one K -> a model bundle (offline extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeemo.commands.common import import_offline, positive_int


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("export", help="export a run's models at one K as a model bundle (ONNX)", allow_abbrev=False,
                         description="Per emotion, the best validation seed's model, exported to ONNX, checked "
                                     "against Keras within 1e-4, with a threshold chosen on validation data.")
    p.add_argument("run", type=Path, metavar="RUN", help="training run folder")
    p.add_argument("--data", type=Path, required=True, help="the dataset the run was trained on (parity check)")
    p.add_argument("--k", type=positive_int, required=True, help="landmarks per emotion (a K the run trained)")
    p.add_argument("--arch", choices=("t-emo", "r-emo"), default="t-emo")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write (replaced atomically)")
    p.add_argument("--id", default=None, help="bundle id (default: ARCH-kK-<data fingerprint>)")
    p.add_argument("--threshold", type=_threshold, default=None, metavar="P",
                   help="one decision threshold for every emotion, in (0, 1) (default: each emotion's own, the "
                        "cut with the best balanced accuracy on its validation windows)")
    p.add_argument("--uncalibrated", type=Path, default=None, metavar="PATH",
                   help="for a run trained on rest-relative data (edgeemo data synth --representation "
                        "rest-relative/v1): the absolute bundle served until a face's rest is known, copied whole "
                        "into the new bundle's uncalibrated/ (e.g. edgeemo/models/default)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    export = import_offline("offline.export.export")
    bundle = export.export_bundle(args.run, args.data, args.out, k=args.k, arch=args.arch, bundle_id=args.id,
                                  threshold=args.threshold, uncalibrated=args.uncalibrated)
    print(bundle.summary())
    return 0
