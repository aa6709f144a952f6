"""Frames with several real faces in them (London dev photos, CC BY 4.0), for the multi-face tests.

Each face is a 480x480 photo cut out with a soft oval around the face, so two faces can pass each other on
a grey canvas, the one drawn later in front.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE = 480  # the London dev photos' side
GREY = 127


def _oval(points: np.ndarray) -> np.ndarray:
    """float32 [480, 480, 1] weights: 1 inside an oval around the face's landmarks, fading out over 12 px."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
    axes = (int((x1 - x0) * 0.62), int((y1 - y0) * 0.62))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    return (cv2.GaussianBlur(mask, (25, 25), 0).astype(np.float32) / 255.0)[..., None]


class Scene:
    """A canvas ``width`` x ``height``; ``frame([(photo, points, x, y), ...])`` draws each photo's face with
    its photo's top left at (x, y), in order (later ones in front)."""

    def __init__(self, width: int, height: int = SIZE) -> None:
        self.width, self.height = width, height
        self._ovals: dict[int, np.ndarray] = {}

    def frame(self, faces: list[tuple[np.ndarray, np.ndarray, int, int]]) -> np.ndarray:
        canvas = np.full((self.height, self.width, 3), GREY, np.float32)
        for photo, points, x, y in faces:
            oval = self._ovals.setdefault(id(points), _oval(points))
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + SIZE, self.width), min(y + SIZE, self.height)
            if x1 <= x0 or y1 <= y0:
                continue
            part = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
            weight = oval[part]
            canvas[y0:y1, x0:x1] = weight * photo[part] + (1 - weight) * canvas[y0:y1, x0:x1]
        return canvas.round().astype(np.uint8)
