"""The ``edgeemo`` command: builds the parser from the verb modules in ``edgeemo.commands``.

Verbs that need TensorFlow import the ``offline`` package lazily, inside their handler, so the runtime
starts fast and works on a device without it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from edgeemo import __version__
from edgeemo.commands import (bench, data, explain, export, fuse, info, keys, relay, report, select, serve, subscribe,
                              train)
from edgeemo.errors import EdgeemoError
from edgeemo.logs import QUIET_ENVIRONMENT, configure_logging, quiet_native_logs

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
    """The command; ``argv`` None: this process's own command line (the console script), which may then
    also filter fd 2 for ``serve`` (``edgeemo.logs``; a caller passing ``argv`` keeps its stderr as it is)."""
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    if not verbose:
        # MediaPipe, TensorFlow and OpenCV log C++ start-up chatter to stderr; users see only errors.
        for key, value in QUIET_ENVIRONMENT.items():
            os.environ.setdefault(key, value)
        if argv is None and args.verb == "serve":
            quiet_native_logs()
    if args.verb in ("serve", "subscribe", "relay"):
        configure_logging(verbose)
    try:
        code = args.handler(args)
    except EdgeemoError as exc:
        print(f"edgeemo: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    if argv is None and args.verb == "serve":
        exit_now(code)
    return code


def exit_now(code: int) -> None:
    """End serve's process once serve has closed what it owns. The interpreter's own exit would then
    spend seconds tearing down TensorFlow's and MediaPipe's modules (measured: 3 to 4 s, past the 2 s a
    stop may take), and could wait on a capture thread still inside a driver or FFmpeg call."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say anyway
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
