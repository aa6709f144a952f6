"""``edgeemo bench``: classifier latency against K, and the serve pipeline end to end, on this machine."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "bench", help="time the six models for each K, and the whole pipeline on a real face video",
        allow_abbrev=False,
        description="Build T-EMO and R-EMO bundles for K = 468, 234, 128, 64, 32, 16 (needs edgeemo[offline]), time "
                    "them, then time edgeemo serve's per-frame work on the built-in demo clip and MediaPipe alone. "
                    "Writes classifier_latency and end_to_end as .json, .md and .png. A few minutes.",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results"), metavar="DIR",
                   help="folder for the results (default bench/results)")
    p.add_argument("--quick", action="store_true",
                   help="tiny models and short timings: checks that everything runs, in seconds; not for comparison")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeemo.benchmark.run import run_bench

    command = "edgeemo " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "edgeemo bench"
    for path in run_bench(args.out, quick=args.quick, command=command):
        print(path)
    return 0
