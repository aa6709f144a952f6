"""Which ONNX Runtime providers ``serve --device`` asks for, and a check that they really loaded.

ONNX Runtime falls back to the CPU without an error when the CUDA provider cannot load (the
onnxruntime-gpu wheel missing, CUDA or cuDNN libraries absent or of another version): it only logs a
warning, which serve's quiet start hides. So ``--device cuda`` opens one of the bundle's models with
the providers asked for and looks at what the session got; a restart cannot fix a missing library, so
that is a usage error (exit 2), said in one line.
"""

from __future__ import annotations

from pathlib import Path

from edgeemo.errors import EdgeemoError

PROVIDERS = {"cpu": ("CPUExecutionProvider",), "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider")}


def check_device(device: str, model: Path) -> tuple[str, ...]:
    """The providers for ``device``, once ``model`` (an .onnx file) has been seen to run on the first one."""
    if device not in PROVIDERS:
        raise EdgeemoError(f"--device {device}: expected one of {', '.join(PROVIDERS)}")
    providers = PROVIDERS[device]
    if device == "cpu":
        return providers
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if providers[0] not in available:
        raise EdgeemoError(
            f"--device {device}: this ONNX Runtime ({onnxruntime.__version__}) has no {providers[0]} "
            f"(it has {', '.join(available)}): install onnxruntime-gpu (pip install 'edgeemo[gpu]'), "
            "or use --device cpu"
        )
    session = onnxruntime.InferenceSession(str(model), providers=list(providers))
    got = session.get_providers()
    if not got or got[0] != providers[0]:
        raise EdgeemoError(
            f"--device {device}: {providers[0]} is installed but did not load (its CUDA or cuDNN libraries are "
            f"missing or of another version; the session fell back to {', '.join(got)}); run with --verbose "
            "for ONNX Runtime's reason, or use --device cpu"
        )
    return providers
