"""The canonical face of the 468-landmark MediaPipe mesh: template, stable points, left/right symmetry.

``resources/face_template.npz`` is derived from real faces by ``python -m offline.data.face_template``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

N_LANDMARKS = 468
TEMPLATE_PATH = Path(__file__).parent / "resources" / "face_template.npz"

# Landmarks that expressions barely move: eye corners, nose bridge and ridge, upper forehead, temples.
# The per-frame alignment is fitted on these alone, so a smile or a jaw drop does not shift the frame.
STABLE_POINTS = (33, 133, 362, 263, 168, 6, 197, 195, 10, 151, 127, 356, 234, 454)


class FaceTemplate(NamedTuple):
    template: np.ndarray  # float32 [468, 2]: the canonical neutral face, height in [0, 1], midline x = 0.5
    mirror: np.ndarray  # int16 [468]: mirror[i] is the landmark at the mirror position of landmark i
    stable_points: np.ndarray  # int16 [S]: landmarks the alignment is fitted on


@lru_cache(maxsize=1)
def face_template() -> FaceTemplate:
    with np.load(TEMPLATE_PATH) as data:
        return FaceTemplate(data["template"], data["mirror"], data["stable_points"])


def mirror_points(points: np.ndarray) -> np.ndarray:
    """Mirror image of normalised faces [..., 468, 2]: x -> 1 - x, and left and right landmarks swap.

    Flipping x alone would put the left eye's landmarks where the right eye is; the permutation gives each
    position back the landmark that belongs there, so a mirrored face is again a valid mesh.
    """
    mirrored = points[..., face_template().mirror, :].copy()
    mirrored[..., 0] = 1.0 - mirrored[..., 0]
    return mirrored
