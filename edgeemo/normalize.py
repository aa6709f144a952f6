"""Per-frame normalisation of face-mesh landmarks to the canonical face (the same code offline and live).

Each frame is moved by the similarity transform (rotation, uniform scale, translation) that best fits its
stable points (eye corners, nose bridge, forehead, temples) onto the canonical face. This does what the
paper's crop-and-resize to 300x300 does (face position and size) and also removes in-plane head roll,
while the expression (which moves other landmarks) is left untouched.
"""

from __future__ import annotations

import numpy as np

from edgeemo.face import face_template

NORMALIZATION = "similarity-to-canonical-face/v1"


def normalize_landmarks(points: np.ndarray) -> np.ndarray:
    """Normalise landmarks [..., 468, 2] given in pixels (x right, y down) to the canonical face frame.

    Use pixels, not MediaPipe's [0, 1] image coordinates, whose x and y scales differ on non-square images.
    Frames that are NaN (no face) stay NaN. Returns float32 of the same shape.
    """
    face = face_template()
    pts = np.asarray(points, dtype=np.float64)
    z = pts[..., 0] + 1j * pts[..., 1]  # a 2-D similarity is multiplication by one complex number
    stable = z[..., face.stable_points]
    target = face.template[face.stable_points].astype(np.float64)
    target = target[:, 0] + 1j * target[:, 1]
    target_mean = target.mean()
    target_c = target - target_mean
    stable_mean = stable.mean(axis=-1, keepdims=True)
    stable_c = stable - stable_mean
    # Least-squares s*e^(i*theta) mapping the centred stable points onto the centred template points.
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN frames (no face) stay NaN, silently
        coef = (np.conj(stable_c) * target_c).sum(axis=-1, keepdims=True) / (np.abs(stable_c) ** 2).sum(
            axis=-1, keepdims=True
        )
    aligned = coef * (z - stable_mean) + target_mean
    return np.stack([aligned.real, aligned.imag], axis=-1).astype(np.float32)
