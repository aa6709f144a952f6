"""The fused streaming pair in ``edgeemo export``: built from the exported ONNX models (edgeemo.fuse) and
checked against the Keras models themselves on each one's held-out test windows, refused above 1e-4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeemo.bundle import MANIFEST, ModelBundle, write_manifest
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.fuse import PARITY_TOLERANCE, write_pair
from edgeemo.streaming import StreamingClassifier

DEFAULT_FPS = 30.0  # a dataset that does not record its rate was made for a ~30 fps camera


def frame_interval(meta: dict) -> float:
    """Seconds between the camera frames the dataset's windows assume (its meta "fps")."""
    fps = meta.get("fps")
    return 1.0 / fps if isinstance(fps, (int, float)) and fps > 0 else 1.0 / DEFAULT_FPS


def add_checked_pair(staging: Path, keras_models: dict[str, tuple[object, np.ndarray]], meta: dict,
                     tolerance: float = PARITY_TOLERANCE) -> ModelBundle:
    """Write the pair into the staging bundle; ``keras_models`` maps each emotion to (its Keras model, its
    held-out windows [n, P, 2, 468])."""
    bundle = write_pair(staging, frame_interval(meta), tolerance)
    pair = StreamingClassifier(bundle)
    union = bundle.landmarks_union
    worst = 0.0
    for i, emotion in enumerate(EMOTIONS):
        model, windows = keras_models[emotion]
        landmarks = bundle.models[i].landmarks
        expected = np.asarray(model(windows[..., landmarks][..., None].astype(np.float32), training=False))[:, 1]
        got = np.array([pair.classify(pair.encode_frames(w[..., union].transpose(0, 2, 1)))[i] for w in windows])
        worst = max(worst, float(np.abs(got - expected).max()))
    if not worst <= tolerance:
        raise EdgeemoError(f"{staging}: the streaming pair and the Keras models differ by {worst:.2e} "
                           f"(> {tolerance:.0e}) on held-out windows; refusing to write the bundle")
    manifest = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
    manifest["streaming"]["keras_parity_max_abs_difference"] = worst
    write_manifest(staging, manifest)
    return bundle
