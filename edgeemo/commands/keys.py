"""``edgeemo keys``: make the CURVE key pairs that encrypt predictions beyond loopback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "keys", help="make CURVE keys for serve, relay and subscribers", allow_abbrev=False,
        description="Write a server and a client key pair (ZeroMQ certificates): server.key, server.key_secret, "
                    "client.key, client.key_secret. Secret files are mode 0600. Existing keys are never overwritten.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the keys into")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeemo.keys import create_keys

    for path in create_keys(args.out):
        print(path)
    print("binding (serve --bind, relay) needs server.key_secret and client.key; "
          "connecting (subscribers, serve --connect) needs client.key_secret and server.key", file=sys.stderr)
    return 0
