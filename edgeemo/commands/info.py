"""``edgeemo info``: installed versions, ONNX Runtime providers, the model bundle."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("info", help="versions, ONNX Runtime providers, default model bundle", allow_abbrev=False)
    p.add_argument("--model", type=Path, default=None, help="a model bundle folder to describe")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeemo.info import describe

    print(describe(model=args.model))
    return 0
