"""Video files that tests write from real images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_mjpg(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Motion-JPEG AVI: this OpenCV build writes and reads it back everywhere (avc1 has no encoder here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
