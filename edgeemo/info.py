"""``edgeemo info``: what is installed, and where the default model bundle is."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from edgeemo import __version__
from edgeemo.bundle import MANIFEST, UNCALIBRATED_FOLDER, load_bundle

DEFAULT_BUNDLE = Path(__file__).parent / "models" / "default"
# The default bundle is calibrated (docs/calibration.md); its absolute fallback, served until a face's rest is
# known, sits inside it: what a test or benchmark of absolute (or per-emotion) models runs.
ABSOLUTE_BUNDLE = DEFAULT_BUNDLE / UNCALIBRATED_FOLDER

# Read from the installed distributions' metadata: importing mediapipe or TensorFlow to ask takes seconds.
_PACKAGES = ("mediapipe", "onnxruntime", "onnxruntime-gpu", "numba", "numpy", "pyzmq", "tensorflow", "tf2onnx")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _onnx_providers() -> str:
    try:
        import onnxruntime
    except ImportError:
        return "not installed (pip install 'edgeemo[cpu]')"
    return ", ".join(onnxruntime.get_available_providers())


def describe(model: Path | None = None) -> str:
    rows = [("edgeemo", __version__), ("python", platform.python_version())]
    for dist in _PACKAGES:
        version = _version(dist)
        if version is not None or dist in ("mediapipe", "tensorflow"):
            rows.append((dist, version or "not installed"))
    rows.append(("onnxruntime providers", _onnx_providers()))
    bundle = model or DEFAULT_BUNDLE
    label = "model bundle" if model else "default model bundle"
    present = (bundle / MANIFEST).is_file()
    rows.append((label, str(bundle) if present else f"{bundle} (none there)"))
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    if model is not None or present:
        text += "\n\n" + load_bundle(bundle).summary()  # a broken bundle raises, naming the problem
    return text
