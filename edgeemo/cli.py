"""The ``edgeemo`` command: builds the parser from the verb modules in ``edgeemo.commands``.

Verbs that need TensorFlow import the ``offline`` package lazily, inside their handler, so the runtime
starts fast and works on a device without it.
"""

from __future__ import annotations

import argparse
import os
import sys

from edgeemo import __version__
from edgeemo.commands import (bench, data, explain, export, fuse, info, keys, relay, report, select, serve, subscribe,
                              train)
from edgeemo.errors import EdgeemoError

COMMANDS = (info, data, train, explain, select, report, export, fuse, serve, subscribe, relay, keys, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeemo", allow_abbrev=False,
        description="Real-time, explainable emotion recognition from face-mesh landmarks.",
    )
    parser.add_argument("--version", action="version", version=f"edgeemo {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for command in COMMANDS:
        command.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    # MediaPipe and TensorFlow log C++ start-up chatter to stderr; users see only warnings and errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except EdgeemoError as exc:
        print(f"edgeemo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
