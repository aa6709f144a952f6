"""Landmark-guided morphing between two photos of one face: neutral -> smiling clips of a real person.

Used to make the built-in demo clip (scripts/make_demo_clip.py), the runtime's test videos and the real-face
benchmark. The image is cut into triangles over the face mesh (plus the image border), each triangle is moved
by the affine map between the two landmark sets, and the two warped photos are cross-dissolved. ``load_face``
reads a London dev photo with its landmarks; ``write_video`` writes a clip as mp4.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import Delaunay

from edgeemo.errors import EdgeemoError
from edgeemo.io import atomic_path

FPS = 30


def _with_border(points: np.ndarray, width: int, height: int) -> np.ndarray:
    w, h = width - 1, height - 1
    border = np.array([[0, 0], [w / 2, 0], [w, 0], [w, h / 2], [w, h], [w / 2, h], [0, h], [0, h / 2]], np.float64)
    return np.vstack([points.astype(np.float64), border])


def _backward_map(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]):
    """Per-pixel source coordinates for a warp that moves the ``src`` mesh onto ``dst``."""
    height, width = shape
    index = np.full((height, width), -1, np.int32)
    for t, tri in enumerate(triangles):  # rasterise once per triangle; the maths below is vectorised
        cv2.fillConvexPoly(index, np.round(dst[tri]).astype(np.int32), int(t))
    affine = np.empty((len(triangles), 2, 3))
    for t, tri in enumerate(triangles):
        affine[t] = cv2.getAffineTransform(dst[tri].astype(np.float32), src[tri].astype(np.float32))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    a = affine[np.maximum(index, 0)]
    map_x = (a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]).astype(np.float32)
    map_y = (a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]).astype(np.float32)
    outside = index < 0
    map_x[outside], map_y[outside] = xs[outside], ys[outside]
    return map_x, map_y


def morph(image_a: np.ndarray, points_a: np.ndarray, image_b: np.ndarray, points_b: np.ndarray,
          alpha: float) -> np.ndarray:
    """The face at ``alpha`` of the way from photo A to photo B (same size; landmarks in pixels [468, 2])."""
    height, width = image_a.shape[:2]
    pa, pb = _with_border(points_a, width, height), _with_border(points_b, width, height)
    target = (1.0 - alpha) * pa + alpha * pb
    triangles = Delaunay(0.5 * (pa + pb)).simplices
    warped = []
    for image, source in ((image_a, pa), (image_b, pb)):
        map_x, map_y = _backward_map(source, target, triangles, (height, width))
        warped.append(cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return cv2.addWeighted(warped[0], 1.0 - alpha, warped[1], alpha, 0.0)


def smile_clip(neutral: np.ndarray, neutral_points: np.ndarray, smiling: np.ndarray, smiling_points: np.ndarray,
               hold_neutral: int = 20, onset: int = 15, hold_smile: int = 45, release: int = 0) -> list[np.ndarray]:
    """Frames: neutral held, a smooth onset to the smile, the smile held, optionally released again."""
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, onset + 2)[1:-1])  # ease in and out, like a real onset
    alphas = np.concatenate([np.zeros(hold_neutral), ramp, np.ones(hold_smile), ramp[::-1][:release]])
    cache: dict[float, np.ndarray] = {}
    frames = []
    for alpha in alphas:
        key = round(float(alpha), 6)
        if key not in cache:
            cache[key] = morph(neutral, neutral_points, smiling, smiling_points, float(alpha))
        frames.append(cache[key])
    return frames


def load_face(london_dev: Path, face_id: str, expression: str) -> tuple[np.ndarray, np.ndarray]:
    """A London dev photo (BGR) and its MediaPipe landmarks in pixels [468, 2]."""
    image_path = london_dev / "images" / f"{face_id}_{expression}.jpg"
    image = cv2.imread(str(image_path))
    if image is None:
        raise EdgeemoError(f"{image_path}: missing or not an image")
    data = np.load(london_dev / "landmarks.npz")
    row = np.flatnonzero((data["face_id"] == face_id) & (data["expression"] == expression))
    if len(row) != 1:
        raise EdgeemoError(f"{london_dev / 'landmarks.npz'}: no landmarks for face {face_id} {expression}")
    height, width = image.shape[:2]
    return image, data["landmarks"][row[0], :, :2] * np.array([width, height], np.float32)


def write_video(path: Path, frames: list[np.ndarray], fps: float = FPS) -> None:
    height, width = frames[0].shape[:2]
    with atomic_path(path, suffix=path.suffix) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise EdgeemoError(f"{path}: OpenCV cannot write mp4v video here")
        for frame in frames:
            writer.write(frame)
        writer.release()
