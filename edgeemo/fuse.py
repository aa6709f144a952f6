"""``edgeemo fuse``: add the fused streaming pair to a bundle, from its per-emotion ONNX models' weights.

Needs the ``onnx`` package (in the cpu and gpu extras), not TensorFlow, so it upgrades any bundle where it
is served, the shipped default included. The pair is checked against the per-emotion models on windows of
real faces (the London dev set's neutral -> smiling pairs, as onsets at several speeds, held expressions
and offsets) and refused above PARITY_TOLERANCE. The new bundle is assembled beside ``out`` and renamed
into place, so a failure leaves the old one untouched.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from edgeemo.bundle import DEFAULT_FRAME_INTERVAL_S, MANIFEST, ModelBundle, load_bundle, write_manifest
from edgeemo.classifier import EmotionClassifier
from edgeemo.errors import EdgeemoError
from edgeemo.io import replace_folder
from edgeemo.normalize import normalize_landmarks
from edgeemo.streaming import StreamingClassifier

PARITY_TOLERANCE = 1e-4
ENCODER_FILE, HEAD_FILE = "streaming_encoder.onnx", "streaming_head.onnx"


def real_face_windows(frames: int, count: int | None = None) -> np.ndarray:
    """Windows [n, frames, 468, 2] of normalised real-face landmarks: for each London dev face, its neutral
    -> smiling onset at three speeds and two positions, the smile held, and the offset back."""
    # The landmarks are the photos' [0, 1] coordinates; the photos are square, so they normalise as pixels do.
    data = np.load(resources.files("offline") / "resources" / "london-dev" / "landmarks.npz")
    points = normalize_landmarks(data["landmarks"][..., :2])
    neutral = points[data["expression"] == "neutral"]
    smiling = points[data["expression"] == "smiling"]
    t = np.arange(frames, dtype=np.float32)
    ramps = [np.clip((t - start) / length, 0, 1) for start, length in ((0, frames), (frames / 4, frames / 4),
                                                                      (frames / 2, 2), (0, 1))]
    ramps += [1 - ramps[1]]
    windows = [n * (1 - r)[:, None, None] + s * r[:, None, None] for n, s in zip(neutral, smiling) for r in ramps]
    return np.stack(windows[:count] if count else windows).astype(np.float32)


def pair_parity(bundle: ModelBundle, windows: np.ndarray) -> float:
    """Largest |pair - per-emotion models| over ``windows`` [n, P, 468, 2]."""
    old, new = EmotionClassifier(bundle), StreamingClassifier(bundle)
    union = bundle.landmarks_union
    worst = 0.0
    for window in windows:
        faces = window[:, union]
        expected = old.classify(np.ascontiguousarray(faces.transpose(0, 2, 1)))
        worst = max(worst, float(np.abs(new.classify(new.encode_frames(faces)) - expected).max()))
    return worst


def write_pair(folder: Path, frame_interval_s: float | None = None, tolerance: float = PARITY_TOLERANCE) -> ModelBundle:
    """Write the pair into the bundle folder ``folder`` in place (a staging folder) and add it to the manifest."""
    from edgeemo.streaming_graphs import encoder_bytes, encoding_width, head_bytes, read_onnx_weights

    bundle = load_bundle(folder)
    weights = [read_onnx_weights(m.path, m.landmarks) for m in bundle.models]
    (folder / ENCODER_FILE).write_bytes(encoder_bytes(weights, bundle.landmarks_union))
    (folder / HEAD_FILE).write_bytes(head_bytes(weights, bundle.frames))
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    interval = frame_interval_s or manifest.get("frame_interval_s") or DEFAULT_FRAME_INTERVAL_S
    manifest.update({
        "frame_interval_s": float(interval), "window_s": (bundle.frames - 1) * bundle.frame_stride * float(interval),
        "streaming": {"encoder": {"file": ENCODER_FILE}, "head": {"file": HEAD_FILE}, "encoding_width": encoding_width(weights)},
    })
    write_manifest(folder, manifest)
    bundle = load_bundle(folder)
    difference = pair_parity(bundle, real_face_windows(bundle.frames))
    if not difference <= tolerance:
        raise EdgeemoError(f"{folder}: the streaming pair and the per-emotion models differ by {difference:.2e} "
                           f"(> {tolerance:.0e}) on real-face windows; refusing to write it")
    manifest["streaming"]["parity_max_abs_difference"] = difference
    manifest["streaming"]["parity_windows"] = "London dev faces, neutral -> smiling onsets, holds and offsets"
    write_manifest(folder, manifest)
    return load_bundle(folder)


def fuse_bundle(path: str | Path, out: str | Path | None = None, *, frame_interval_s: float | None = None) -> ModelBundle:
    """Copy the bundle at ``path`` to ``out`` (default: replace it) with the streaming pair added."""
    source, out = Path(path), Path(out or path)
    load_bundle(source)  # refuse a broken bundle before copying anything
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        staging.chmod(0o755)  # mkdtemp makes it private; a bundle is read by whoever runs serve
        write_pair(staging, frame_interval_s)
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_bundle(out)
