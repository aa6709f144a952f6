"""Landmark-guided morphing between two photos of one face: neutral -> smiling clips of a real person.

Used to make the built-in demo clip (scripts/make_demo_clip.py), the runtime's test videos and the real-face
benchmark. The image is cut into triangles over the face mesh (plus the image border), each triangle is moved
by the affine map between the two landmark sets, and the two warped photos are cross-dissolved. ``load_face``
reads a London dev photo with its landmarks; ``write_video`` writes a clip as mp4. ``turn`` turns a face about
a vertical axis (yaw) as a webcam would film it, guided by the landmarks' depth (the real-face benchmark's
head turns).
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


def _backward_map(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, shape: tuple[int, int], step: int = 1):
    """Per-pixel source coordinates for a warp that moves the ``src`` mesh onto ``dst``.

    ``step`` > 1: computed on a grid ``step`` times coarser and interpolated back (a piecewise affine map is
    continuous, so that moves a pixel by a fraction of one; ``step`` 2 is about 4 times faster)."""
    if step > 1:
        full_h, full_w = shape
        height, width = -(-full_h // step), -(-full_w // step)
        map_x, map_y = _backward_map(src / step, dst / step, triangles, (height, width))
        size = (width * step, height * step)
        map_x = cv2.resize(map_x * step, size, interpolation=cv2.INTER_LINEAR)[:full_h, :full_w]
        map_y = cv2.resize(map_y * step, size, interpolation=cv2.INTER_LINEAR)[:full_h, :full_w]
        return np.ascontiguousarray(map_x), np.ascontiguousarray(map_y)
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


def turned_points(points: np.ndarray, yaw_deg: float, distance: float = 3.0) -> np.ndarray:
    """Where landmarks [468, 3] in pixels (x, y and depth z, z away from the camera) appear [468, 2] once the
    head turns by ``yaw_deg`` about the vertical axis through the landmarks' centre (yaw > 0 turns the nose
    to the image's left, as edgeemo.head_pose counts it), filmed by a pinhole camera ``distance`` face
    heights away (a webcam's perspective). Yaw 0 leaves the points where they are."""
    centre = points.mean(axis=0)
    face_height = float(np.linalg.norm(points[152, :2] - points[10, :2]))  # chin to forehead
    depth = distance * face_height  # the camera's distance; focal length the same, so the scale stays
    theta = np.radians(yaw_deg)
    # Seen from the camera (x right, y down, z away), a head turning its nose to the image's left rotates
    # by -theta about y: x' = x cos - z sin... with the nose (z < 0) moving to smaller x for theta > 0.
    rotation = np.array([[np.cos(theta), 0.0, np.sin(theta)], [0.0, 1.0, 0.0], [-np.sin(theta), 0.0, np.cos(theta)]])

    def project(p: np.ndarray) -> np.ndarray:
        return centre[:2] + depth * p[:, :2] / (depth + p[:, 2:3])

    relative = points - centre
    # Only the change the turn makes: at yaw 0 the photo's own projection is kept as it is.
    return points[:, :2] + project(relative @ rotation.T) - project(relative)


def turn(image: np.ndarray, points: np.ndarray, yaw_deg: float, distance: float = 3.0, step: int = 2) -> np.ndarray:
    """The face of ``image`` (landmarks [468, 3] in pixels, depth included) turned by ``yaw_deg`` degrees, as
    ``turned_points`` moves its landmarks; the image between the face and the border is stretched to follow."""
    if yaw_deg == 0.0:
        return image
    height, width = image.shape[:2]
    source = _with_border(points[:, :2], width, height)
    target = _with_border(turned_points(points, yaw_deg, distance), width, height)
    triangles = Delaunay(source).simplices
    map_x, map_y = _backward_map(source, target, triangles, (height, width), step)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def load_face(london_dev: Path, face_id: str, expression: str, depth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A London dev photo (BGR) and its MediaPipe landmarks in pixels [468, 2] (``depth``: [468, 3], z in
    the same pixels, as MediaPipe scales it by the image's width)."""
    image_path = london_dev / "images" / f"{face_id}_{expression}.jpg"
    image = cv2.imread(str(image_path))
    if image is None:
        raise EdgeemoError(f"{image_path}: missing or not an image")
    data = np.load(london_dev / "landmarks.npz")
    row = np.flatnonzero((data["face_id"] == face_id) & (data["expression"] == expression))
    if len(row) != 1:
        raise EdgeemoError(f"{london_dev / 'landmarks.npz'}: no landmarks for face {face_id} {expression}")
    height, width = image.shape[:2]
    if depth:
        return image, data["landmarks"][row[0]] * np.array([width, height, width], np.float32)
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


def clip_frames(neutral: np.ndarray, neutral_points: np.ndarray, smiling: np.ndarray, smiling_points: np.ndarray,
                alphas: np.ndarray, yaws: np.ndarray | None = None, distance: float = 3.0) -> list[np.ndarray]:
    """One frame per entry of ``alphas`` (0 the neutral photo, 1 the smiling one, between a morph), each
    turned by its ``yaws`` entry in degrees (None: no turn). Landmarks [468, 3] in pixels, depth included
    (``load_face(..., depth=True)``). Morphs are made once per distinct alpha; turned frames once each."""
    yaws = np.zeros(len(alphas)) if yaws is None else np.asarray(yaws, np.float64)
    if len(yaws) != len(alphas):
        raise EdgeemoError(f"clip_frames: {len(alphas)} alphas but {len(yaws)} yaws")
    morphs: dict[float, np.ndarray] = {}
    frames = []
    for alpha, yaw in zip(np.asarray(alphas, np.float64), yaws):
        key = round(float(alpha), 6)
        if key not in morphs:
            morphs[key] = morph(neutral, neutral_points[:, :2], smiling, smiling_points[:, :2], key)
        points = (1.0 - key) * neutral_points + key * smiling_points  # the morph's landmarks, depth too
        frames.append(turn(morphs[key], points, float(yaw), distance) if yaw else morphs[key])
    return frames
