"""Frame sequences of landmarks: fill frames where no face was found, resample to P frames."""

from __future__ import annotations

import numpy as np

from edgeemo.errors import EdgeemoError


def fill_missing(points: np.ndarray, where: str = "sequence") -> np.ndarray:
    """Replace NaN frames of [T, ...] by linear interpolation in time (the ends copy the nearest found frame)."""
    points = np.asarray(points, dtype=np.float32)
    found = np.isfinite(points.reshape(len(points), -1)).all(axis=1)
    if not found.any():
        raise EdgeemoError(f"{where}: no face found in any of its {len(points)} frames")
    if found.all():
        return points
    t = np.arange(len(points))
    flat = points.reshape(len(points), -1)
    filled = np.empty_like(flat)
    for j in range(flat.shape[1]):  # once per coordinate at import time, not on the runtime's hot path
        filled[:, j] = np.interp(t, t[found], flat[found, j])
    return filled.reshape(points.shape)


def resample(points: np.ndarray, frames: int) -> np.ndarray:
    """Linearly resample [T, ...] to [frames, ...], keeping the first (neutral) and last (apex) frames."""
    points = np.asarray(points, dtype=np.float32)
    if len(points) == 1:
        return np.repeat(points, frames, axis=0)
    position = np.linspace(0.0, len(points) - 1, frames)
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, len(points) - 1)
    w = (position - lo).reshape((-1,) + (1,) * (points.ndim - 1)).astype(np.float32)
    return (1.0 - w) * points[lo] + w * points[hi]
