"""``edgeemo subscribe``: print what an ``edgeemo serve`` publishes, one line per message."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from edgeemo.commands.common import positive_float, positive_int
from edgeemo.messages import DEFAULT_ENDPOINT, NO_PREDICTION


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "subscribe", help="print the predictions and status that edgeemo serve publishes", allow_abbrev=False,
        description="Connect to an edgeemo publisher and print one line per message.",
    )
    p.add_argument("endpoint", nargs="?", default=DEFAULT_ENDPOINT, metavar="ENDPOINT",
                   help=f"the publisher's address (default {DEFAULT_ENDPOINT})")
    p.add_argument("--stream", action="append", metavar="S", help="only this stream id (repeat for more)")
    p.add_argument("--face", action="append", type=_face_id, metavar="ID",
                   help="only this face id's predictions and status (ids are per stream: give --stream too when "
                        "there are several); repeat for more")
    p.add_argument("--json", action="store_true", help="print each message as one JSON object, as published")
    p.add_argument("--count", type=positive_int, default=None, metavar="N", help="stop after N messages")
    p.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                   help="fail when no message arrives for this long (default: wait for ever)")
    p.add_argument("--curve-keys", type=Path, default=None, metavar="DIR",
                   help="the publisher encrypts with CURVE: client.key_secret and server.key from DIR (edgeemo keys); "
                        "required beyond loopback")
    p.add_argument("--server-key", type=Path, default=None, metavar="FILE",
                   help="the publisher's public key file (default: server.key in --curve-keys DIR)")
    p.set_defaults(handler=run)


def _face_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a face id, an integer >= 0, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from edgeemo.errors import EdgeemoError
    from edgeemo.keys import load_client_keys
    from edgeemo.subscriber import Subscriber

    if args.server_key is not None and args.curve_keys is None:
        raise EdgeemoError("--server-key: also pass --curve-keys DIR with this subscriber's client.key_secret")
    curve = load_client_keys(args.curve_keys, args.server_key) if args.curve_keys is not None else None
    received = 0
    trouble = []

    def on_peer(state: str, detail: str) -> None:
        # Nothing fails when the publisher is down or refuses our keys: say so, once per change, and say
        # when it is reached again (a first connection that just works needs no line).
        if state == "connected" and not trouble:
            return
        trouble.append(state)
        print(f"edgeemo subscribe: {state.replace('_', ' ')}: {detail}", file=sys.stderr, flush=True)

    with Subscriber(args.endpoint, streams=args.stream, curve=curve, on_peer=on_peer, faces=args.face) as sub:
        try:
            while args.count is None or received < args.count:
                item = sub.receive(args.timeout)
                if item is None:
                    why = {"no_peer": "; nothing answers there", "handshake_failed":
                           "; the handshake failed (do --curve-keys match the publisher's?)"}.get(sub.peer_state, "")
                    raise EdgeemoError(
                        f"--timeout {args.timeout:g}: no message from {args.endpoint} within {args.timeout:g} s{why}"
                    )
                _, message = item
                line = json.dumps(message, separators=(",", ":")) if args.json else format_message(message)
                print(line, flush=True)
                received += 1
        except BrokenPipeError:
            # The reader went away (say, `| head`): stop quietly, and keep Python from complaining at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            if sub.dropped:
                print(f"edgeemo subscribe: {sub.dropped} messages missed (gaps in seq)", file=sys.stderr)
    return 0


def format_message(message: dict[str, Any]) -> str:
    """One human-readable line: time, stream, seq, face, then the label, top scores, head pose and latency,
    or the event."""
    t = message["t_publish"]
    clock = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"
    head = f"{clock} {message['stream']} #{message['seq']}"
    if "face" in message:
        head += f" face {message['face']}"
    if message["kind"] == "status":
        detail = f": {message['detail']}" if message["detail"] else ""
        return f"{head} status {message['event']}{detail}"
    if message["label"] != NO_PREDICTION:
        top = sorted(message["scores"].items(), key=lambda item: -item[1])[:3]
        what = f"{message['label']:<9}  " + "  ".join(f"{emotion} {score:.2f}" for emotion, score in top)
    else:
        what = "no prediction yet" if message["face_found"] else "no face"
    if "pose" in message:
        pose = message["pose"]
        turned = " (turned beyond training)" if message.get("pose_beyond_training") else ""
        what += f"  yaw {pose['yaw']:+.0f} pitch {pose['pitch']:+.0f} roll {pose['roll']:+.0f}{turned}"
    calibration = message.get("calibration")
    if calibration is not None and calibration["mode"] == "auto":  # judged against the face's own rest, or not yet
        what += f"  rest {calibration['age_s']:.0f} s" if calibration["calibrated"] else "  finding rest"
    why = f"  | {format_explanation(message['explanation'])}" if "explanation" in message else ""
    return f"{head} {what}  {message['latency']['total'] * 1000:.1f} ms{why}"


def format_explanation(explanation: dict, regions: int = 3) -> str:
    """One line: 'happiness 0.93 (rest 0.02): mouth_corners +0.51, outer_cheeks +0.22, lower_lip +0.10 [res 1e-07]'."""
    ranked = sorted(explanation["regions"].items(), key=lambda item: -abs(item[1]))[:regions]
    parts = ", ".join(f"{name} {value:+.2f}" for name, value in ranked)
    return (f"{explanation['emotion']} {explanation['score']:.2f} (rest {explanation['baseline_score']:.2f}): "
            f"{parts} [res {explanation['residual']:.0e}]")
