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
    # For every frame, the found frames just before and after it (the same one beyond either end).
    t = np.arange(len(points))
    known = np.flatnonzero(found)
    after = np.minimum(np.searchsorted(known, t), len(known) - 1)
    hi, lo = known[after], known[np.maximum(after - 1, 0)]
    lo = np.where(hi < t, hi, lo)  # past the last found frame: hold it
    span = np.maximum(hi - lo, 1)
    w = np.where(hi > lo, (t - lo) / span, 0.0).astype(np.float32).reshape((-1,) + (1,) * (points.ndim - 1))
    return (1.0 - w) * points[lo] + w * points[hi]


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
