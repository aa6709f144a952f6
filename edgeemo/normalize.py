"""Per-frame normalisation of face-mesh landmarks to the canonical face (the same code offline and live).

Each frame is moved by the similarity transform (rotation, uniform scale, translation) that best fits its
stable points (eye corners, nose bridge, forehead, temples) onto the canonical face. This does what the
paper's crop-and-resize to 300x300 does (face position and size) and also removes in-plane head roll,
while the expression (which moves other landmarks) is left untouched.

The fit is a few sums over the 14 stable points and the transform one multiply-add per landmark: compiled
with numba (cached on disk like ``edgeemo.ringbuffer``'s kernels), one face costs about 2 us against 36 us
for the same arithmetic as numpy's complex operations, whose per-call overhead dominated serve's frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import float32, float64, int64, njit, void

from edgeemo.face import face_template

NORMALIZATION = "similarity-to-canonical-face/v1"


@njit([void(t[:, :, :], int64[::1], float64[:, ::1], float32[:, :, ::1]) for t in (float32, float64)],
      cache=True)
def _align(points, stable, target, out):
    """out[n] = points[n] moved by the least-squares similarity of its stable points onto ``target``.

    As complex numbers z = x + iy: the similarity is z -> c (z - mean(stable)) + mean(target), with
    c = sum(conj(s) t) / sum(|s|^2) over the centred stable points s and centred target points t.
    A NaN frame (no face) gives NaN."""
    count = stable.shape[0]
    target_x = target_y = 0.0
    for k in range(count):
        target_x += target[k, 0]
        target_y += target[k, 1]
    target_x /= count
    target_y /= count
    for n in range(points.shape[0]):
        mean_x = mean_y = 0.0
        for k in range(count):
            mean_x += points[n, stable[k], 0]
            mean_y += points[n, stable[k], 1]
        mean_x /= count
        mean_y /= count
        real = imag = norm = 0.0
        for k in range(count):
            sx, sy = points[n, stable[k], 0] - mean_x, points[n, stable[k], 1] - mean_y
            tx, ty = target[k, 0] - target_x, target[k, 1] - target_y
            real += sx * tx + sy * ty
            imag += sx * ty - sy * tx
            norm += sx * sx + sy * sy
        a, b = real / norm, imag / norm  # NaN for a NaN frame, or a degenerate one (every point alike)
        for j in range(points.shape[1]):
            x, y = points[n, j, 0] - mean_x, points[n, j, 1] - mean_y
            out[n, j, 0] = a * x - b * y + target_x
            out[n, j, 1] = b * x + a * y + target_y


def normalize_landmarks(points: np.ndarray) -> np.ndarray:
    """Normalise landmarks [..., 468, 2] given in pixels (x right, y down) to the canonical face frame.

    Use pixels, not MediaPipe's [0, 1] image coordinates, whose x and y scales differ on non-square images.
    Frames that are NaN (no face) stay NaN. Returns float32 of the same shape.
    """
    pts = np.asarray(points)
    if pts.dtype != np.float32:
        pts = pts.astype(np.float64, copy=False)
    flat = pts.reshape(-1, *pts.shape[-2:])
    out = np.empty(flat.shape, dtype=np.float32)
    _align(flat, *_fit_points(), out)
    return out.reshape(pts.shape)


@lru_cache(maxsize=1)
def _fit_points() -> tuple[np.ndarray, np.ndarray]:
    """The stable points' indices and their places on the canonical face, as the kernel takes them."""
    face = face_template()
    return face.stable_points.astype(np.int64), face.template[face.stable_points].astype(np.float64)
