"""``edgeemo report RUN``: accuracy tables (Markdown) and figures of a training run (offline extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeemo.commands.common import import_offline


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("report", help="tables and figures of a training run, into RUN/report/", allow_abbrev=False)
    p.add_argument("run", type=Path, help="run folder written by edgeemo train")
    p.add_argument("--threshold", type=_probability, default=None,
                   help="one threshold for every emotion in the fused six-class result, as edgeemo export "
                        "--threshold P (default: each model's own, chosen on its validation windows, as export does)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = import_offline("offline.report.report")
    written = report.write_report(args.run, threshold=args.threshold)
    print(f"wrote {written[0]} and {len(written) - 1} figures")
    return 0


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value
