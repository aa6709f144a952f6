"""``edgeemo fuse``: add the fused streaming pair to a model bundle (needs the onnx package, not TensorFlow)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeemo.commands.common import positive_float


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "fuse", help="add the fused streaming pair (per-frame encoder, six-emotion head) to a bundle",
        allow_abbrev=False,
        description="Read the bundle's six ONNX models, build one per-frame encoder and one head for all six "
                    "(docs/streaming.md), check them against the six models on real-face windows (within 1e-4, "
                    "refused otherwise) and write them into the bundle, which serve then uses.",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="model bundle folder")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write the fused bundle here (default: replace BUNDLE, atomically)")
    p.add_argument("--frame-interval", type=positive_float, default=None, metavar="SECONDS",
                   help="seconds between the frames the models were trained on (default: the manifest's "
                        "frame_interval_s, else 1/30)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeemo.fuse import fuse_bundle

    try:
        import onnx  # noqa: F401 - checked here for a clear message
    except ImportError:
        from edgeemo.errors import EdgeemoError

        raise EdgeemoError("fuse: needs the onnx package (pip install 'edgeemo[cpu]')") from None
    bundle = fuse_bundle(args.bundle, args.out, frame_interval_s=args.frame_interval)
    print(bundle.summary())
    print(f"  streaming pair: parity {bundle.manifest['streaming']['parity_max_abs_difference']:.1e} "
          "against the per-emotion models on real-face windows")
    return 0
