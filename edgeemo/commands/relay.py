"""``edgeemo relay``: forward what many ``edgeemo serve --connect`` publish to many subscribers."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from edgeemo.relay import DEFAULT_PUBLISHERS, DEFAULT_SUBSCRIBERS


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "relay", help="one address for many serve processes and many subscribers (ZeroMQ XSUB/XPUB)",
        allow_abbrev=False,
        description="Relay predictions and status from every 'edgeemo serve --connect' to every subscriber. "
                    "Runs until SIGINT or SIGTERM.",
    )
    p.add_argument("--publishers", default=DEFAULT_PUBLISHERS, metavar="ENDPOINT",
                   help=f"address serve --connect reaches (default {DEFAULT_PUBLISHERS})")
    p.add_argument("--subscribers", default=DEFAULT_SUBSCRIBERS, metavar="ENDPOINT",
                   help=f"address subscribers connect to (default {DEFAULT_SUBSCRIBERS})")
    p.add_argument("--curve-keys", type=Path, default=None, metavar="DIR",
                   help="encrypt with CURVE: server.key_secret and the client public keys let in (edgeemo keys); "
                        "required for an address beyond loopback")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeemo.keys import load_server_keys
    from edgeemo.relay import Relay

    curve = load_server_keys(args.curve_keys) if args.curve_keys is not None else None
    # Block the signals before any thread starts (threads inherit the mask), then wait for them here:
    # no handler runs in the middle of ZeroMQ calls, and the proxy thread never sees them.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        with Relay(args.publishers, args.subscribers, curve=curve) as relay:
            encrypted = "CURVE" if curve is not None else "no encryption (loopback)"
            print(f"edgeemo relay: publishers -> {relay.publishers}, subscribers <- {relay.subscribers}; {encrypted}",
                  file=sys.stderr, flush=True)
            while relay.is_running() and signal.sigtimedwait(stop_signals, 1.0) is None:
                pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return 0
