"""Shared fixtures: real face data (London dev, CC BY 4.0; scikit-image's astronaut, public domain)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LONDON_DEV = REPO / "offline" / "resources" / "london-dev"

# The offline extra's own packages. An edge install (`pip install -e '.[cpu,dev]'`, no TensorFlow) runs
# the runtime tests and skips those marked offline, saying why, rather than failing them.
OFFLINE_EXTRA = ("tensorflow", "tf2onnx", "sklearn", "ray")
MISSING_OFFLINE = [name for name in OFFLINE_EXTRA if importlib.util.find_spec(name) is None]
NEEDS_OFFLINE = (f"needs the offline extra ({MISSING_OFFLINE[0]} is not installed): pip install -e '.[offline]'"
                 if MISSING_OFFLINE else "")


def marked_offline(module_path: Path) -> bool:
    """Whether the module sets ``pytestmark`` to pytest.mark.offline (alone or in a list); read, not imported."""
    for node in ast.parse(module_path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return any(isinstance(n, ast.Attribute) and n.attr == "offline" for n in ast.walk(node.value))
    return False


class NeedsOfflineExtra(pytest.Module):
    """A test module marked offline, where the offline extra is missing: skipped whole, never imported
    (its imports would fail)."""

    def collect(self):
        pytest.skip(f"{self.path.name}, every test of it: {NEEDS_OFFLINE}")


def pytest_pycollect_makemodule(module_path, parent):
    if MISSING_OFFLINE and marked_offline(module_path):
        return NeedsOfflineExtra.from_parent(parent, path=module_path)
    return None


def pytest_collection_modifyitems(config, items):
    """Single tests marked offline in modules that are not."""
    if MISSING_OFFLINE:
        for item in items:
            if item.get_closest_marker("offline"):
                item.add_marker(pytest.mark.skip(reason=NEEDS_OFFLINE))


@pytest.fixture(scope="session")
def london_dev() -> Path:
    """The London dev faces in the repository: images/NNN_{neutral,smiling}.jpg and landmarks.npz.

    DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666, CC BY 4.0
    (attribution and licence beside the files).
    """
    if not (LONDON_DEV / "images").is_dir():
        pytest.fail(f"London dev faces not found at {LONDON_DEV} (part of the repository: is the checkout whole?)")
    return LONDON_DEV


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain), RGB uint8 512x512."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def linear_bundle(tmp_path_factory) -> Path:
    """A small bundle of analytic linear models (tests.onnx_bundles) for the serve tests: 3 to 5 landmarks per
    emotion, windows of 16 frames at stride 2. Read-only: built once for every module that uses it."""
    from edgeemo.emotions import EMOTIONS
    from tests.onnx_bundles import make_linear_bundle

    folder = tmp_path_factory.mktemp("linear_bundle")
    make_linear_bundle(folder, {e: [33, 61, 133, 291, 362, 263][: 3 + i % 3] for i, e in enumerate(EMOTIONS)},
                       frames=16)
    return folder


@pytest.fixture(scope="session")
def curve_keys(tmp_path_factory) -> Path:
    """CURVE keys for serve, relay and a subscriber, as `edgeemo keys` writes them. Read-only."""
    from edgeemo.cli import main

    folder = tmp_path_factory.mktemp("keys") / "edgeemo"
    assert main(["keys", "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="session")
def calibrated_bundle() -> Path:
    """The shipped default bundle, which is calibrated (docs/calibration.md): real rest-relative models and, in
    ``uncalibrated/``, the absolute fallback. Read-only: tests that edit it copy it first."""
    from edgeemo.bundle import load_bundle
    from edgeemo.info import DEFAULT_BUNDLE

    assert load_bundle(DEFAULT_BUNDLE).calibrated, "the default bundle should be calibrated"
    return DEFAULT_BUNDLE
