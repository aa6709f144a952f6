"""Shared fixtures: real face data (London dev, CC BY 4.0; scikit-image's astronaut, public domain)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LONDON_DEV = REPO / "offline" / "resources" / "london-dev"


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
