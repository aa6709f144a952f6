"""``edgeemo serve``: publish emotion predictions from a camera, a file, a stream or the demo clip."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeemo.commands.common import positive_float, positive_int
from edgeemo.health import DEFAULT_STALE_S
from edgeemo.emotions import EMOTIONS
from edgeemo.messages import DEFAULT_ENDPOINT
from edgeemo.metrics import DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT

DEFAULT_NETWORK_TIMEOUT_S = 5.0  # edgeemo.sources.DEFAULT_NETWORK_TIMEOUT_S: not imported, cv2 loads slowly
FRAME_QUEUE = 3  # edgeemo.serve.FRAME_QUEUE, not imported for the same reason


def _port(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0..65535 (0: off), got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def _cpus(text: str) -> frozenset[int]:
    """A CPU list as taskset and systemd write it ("0", "0,2", "0-3"), each one this process may run on."""
    import os

    if not hasattr(os, "sched_getaffinity"):
        raise argparse.ArgumentTypeError("CPU affinity is set on Linux only")
    allowed = os.sched_getaffinity(0)
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or not (last or first).isdigit() or int(first) > int(last or first):
            raise argparse.ArgumentTypeError(f"expected CPU numbers such as 0 or 0,1 or 0-3, got {text!r}")
        cpus.update(range(int(first), int(last or first) + 1))
    if not cpus <= allowed:
        raise argparse.ArgumentTypeError(f"CPU {min(cpus - allowed)} is not one this process may run on "
                                         f"({','.join(map(str, sorted(allowed)))})")
    return frozenset(cpus)


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "serve", help="camera -> emotion predictions on ZeroMQ, with Prometheus metrics", allow_abbrev=False,
        description="Capture frames, find the face mesh, classify a sliding window with the model bundle and "
                    "publish every prediction as [topic, msgpack] on a ZeroMQ PUB socket.",
    )
    p.add_argument("--camera", action="append", default=None, metavar="SOURCE",
                   help="camera index, video file, folder of images, rtsp:// or http:// URL, or 'demo' "
                        "(a built-in clip of a real face) (default 0); repeat for several streams")
    p.add_argument("--model", type=Path, default=None, metavar="BUNDLE", help="model bundle folder (default: built in)")
    p.add_argument("--stream", action="append", default=None,
                   help="stream id, the end of the topic edgeemo.pred.<stream>; one per --camera "
                        "(default cam0, cam1, ...)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--bind", default=DEFAULT_ENDPOINT, help=f"ZeroMQ PUB address (default {DEFAULT_ENDPOINT})")
    where.add_argument("--connect", default=None, metavar="ENDPOINT",
                       help="publish through an edgeemo relay: connect to its --publishers address instead of binding")
    p.add_argument("--curve-keys", type=Path, default=None, metavar="DIR",
                   help="encrypt with CURVE (edgeemo keys): with --bind, server.key_secret and the client keys let in; "
                        "with --connect, client.key_secret and the relay's server.key. Required beyond loopback")
    p.add_argument("--metrics-host", default=DEFAULT_METRICS_HOST, help="Prometheus endpoint address")
    p.add_argument("--metrics-port", type=_port, default=DEFAULT_METRICS_PORT, help="Prometheus port, 0 for none")
    p.add_argument("--every", type=positive_int, default=1, metavar="N", help="classify every N-th frame")
    p.add_argument("--process-every", type=positive_int, default=1, metavar="N",
                   help="run the face mesh and the models on every N-th frame of each stream and pass over the rest "
                        "(counted in edgeemo_frames_skipped_total): 2 halves the work of a 30 fps camera and still "
                        "fills the default bundle's window, 15 frames a second (default 1: every frame)")
    p.add_argument("--frame-queue", type=positive_int, default=FRAME_QUEUE, metavar="N",
                   help="frames of a camera or paced stream that may wait while its thread is busy; a frame beyond "
                        "them drops the oldest (counted in edgeemo_frames_dropped_total). 1 keeps only the newest "
                        f"(default {FRAME_QUEUE})")
    p.add_argument("--threads", type=positive_int, default=1, help="ONNX Runtime threads")
    p.add_argument("--stream-cpus", type=_cpus, default=None, metavar="LIST",
                   help="run the streams' own threads (edgeemo, ONNX Runtime) on these CPUs only, e.g. 0; "
                        "MediaPipe's threads keep every CPU. Many streams on a 2-core box drop fewer frames so "
                        "(docs/streaming.md#concurrent-streams; default: any CPU)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="ONNX Runtime provider")
    p.add_argument("--fast", action="store_true", help="read files as fast as possible (every frame processed)")
    p.add_argument("--loop", action="store_true", help="play video files again from the start when they end")
    p.add_argument("--face-gap", type=_seconds, default=0.5, metavar="SECONDS",
                   help="a face gone longer than this ends its track, window and rest; back, it is a new face "
                        "(default 0.5; video time with --fast)")
    p.add_argument("--calibration", choices=("auto", "off"), default="auto",
                   help="with a calibrated bundle: auto judges each face against its own resting face, found "
                        "in its first still, expressionless second (POST /rest on the metrics port, or r with "
                        "--show, sets it now); off: the bundle's uncalibrated models only (default auto)")
    p.add_argument("--max-faces", type=positive_int, default=4, metavar="N",
                   help="follow up to N faces per stream, each with its own id, window and predictions (default 4)")
    p.add_argument("--sndhwm", type=positive_int, default=100, help="messages queued per slow subscriber")
    p.add_argument("--network-timeout", type=positive_float, default=DEFAULT_NETWORK_TIMEOUT_S, metavar="SECONDS",
                   help="how long an rtsp:// or http:// source may take to open, and each frame to arrive, before "
                        f"it counts as down and is retried (default {DEFAULT_NETWORK_TIMEOUT_S:g})")
    p.add_argument("--stale-after", type=positive_float, default=DEFAULT_STALE_S, metavar="SECONDS",
                   help="/readyz fails while a stream has had no frame for this long "
                        f"(default {DEFAULT_STALE_S:g}; /healthz only checks that the processing threads turn)")
    p.add_argument("--verbose", action="store_true",
                   help="also show the log lines of MediaPipe, TensorFlow, ONNX Runtime and OpenCV (hidden by default)")
    p.add_argument("--show", action="store_true",
                   help="show each face's id, box, landmarks read and scores in a window (needs a display; q quits)")
    p.add_argument("--explain", action="store_true",
                   help="add an explanation to predictions: which face regions moved the top emotion's score "
                        "(docs/explanations.md; needs a bundle with a streaming pair)")
    p.add_argument("--explain-every", type=positive_int, default=1, metavar="N",
                   help="with --explain: explain every N-th prediction, and whenever the label changes (default 1)")
    p.add_argument("--explain-emotion", choices=EMOTIONS, default=None, metavar="EMOTION",
                   help="with --explain: explain this emotion's score instead of the top one's")
    p.add_argument("--explain-landmarks", action="store_true",
                   help="with --explain: add the 10 largest landmark-level values (an approximation, see the docs)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeemo.shutdown import Shutdown

    # Before the imports that take seconds (OpenCV, NumPy, then MediaPipe): SIGTERM from here on exits 0.
    shutdown = Shutdown().install()
    try:
        from edgeemo.serve import ServeOptions, serve, stream_ids

        cameras = tuple(args.camera or ("0",))
        return serve(ServeOptions(
            cameras=cameras, model=args.model, streams=stream_ids(cameras, args.stream and tuple(args.stream)),
            bind=args.bind, connect=args.connect, curve_keys=args.curve_keys, metrics_host=args.metrics_host,
            metrics_port=args.metrics_port, every=args.every, process_every=args.process_every,
            frame_queue=args.frame_queue, threads=args.threads, stream_cpus=args.stream_cpus,
            device=args.device,
            pace=not args.fast, face_gap_s=args.face_gap, max_faces=args.max_faces, sndhwm=args.sndhwm, show=args.show,
            network_timeout_s=args.network_timeout, stale_s=args.stale_after, loop=args.loop,
            explain=args.explain, explain_every=args.explain_every,
            explain_emotion=args.explain_emotion, explain_landmarks=args.explain_landmarks,
            calibration=args.calibration,
        ), shutdown)
    finally:
        shutdown.restore()
