"""Shared fixtures: real face data (London dev, CC BY 4.0; scikit-image's astronaut, public domain)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def london_dev() -> Path:
    """The London dev faces: images/NNN_{neutral,smiling}.jpg and landmarks.npz.

    DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666, CC BY 4.0.
    Found at $EDGEEMO_LONDON_DEV or ../shared/data/london-dev beside the repository (as on CI).
    """
    path = Path(os.environ.get("EDGEEMO_LONDON_DEV", REPO.parent / "shared" / "data" / "london-dev"))
    if not (path / "images").is_dir():
        pytest.fail(f"London dev faces not found at {path}: set EDGEEMO_LONDON_DEV")
    return path


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain), RGB uint8 512x512."""
    from skimage import data

    return data.astronaut()
