"""Head pose (yaw, pitch, roll in degrees) from one face's landmarks: ``cv2.solvePnP`` against a 3-D head.

The head (``resources/head_model.npz``, written by ``python -m offline.synth.head_model``) is the London dev mean
neutral face in 3-D, turned so that a face looking into the camera reads 0, 0, 0, wherever it is in the image
(angles are taken from the line of sight, as the training data's are). The fit uses only
landmarks that expressions barely move (``POSE_POINTS``: eye corners, nose, forehead, temples, cheekbones),
so a smile does not read as a nod. The camera is unknown: a pinhole with its focal length the image's
larger side (a 53-degree field of view, a webcam's), centred; a wrong guess moves the angles of a face near
the image's centre by little (docs/multi-face.md).

Angles follow ``offline.synth.render.rotations`` (the training data's): the head is turned by roll · yaw ·
pitch; yaw > 0 turns the nose towards the image's left, pitch > 0 tilts it down, roll > 0 turns the face
clockwise in the image.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numba import float64, njit
from numba.types import UniTuple

from edgeemo.face import STABLE_POINTS

HEAD_MODEL_PATH = Path(__file__).parent / "resources" / "head_model.npz"
# STABLE_POINTS, then the nose (tip, base, wings), the cheekbones and the brow ridge's middle.
POSE_POINTS = (*STABLE_POINTS, 1, 4, 5, 2, 98, 327, 129, 358, 116, 345, 50, 280, 9, 8, 93, 323)
# How far the default bundle's synthetic training data turns heads, in degrees from looking into the
# camera: yaw, pitch, roll (offline.synth.render SETUPS["live"].pose_limit; a test checks they agree).
# A face turned further is outside what the models were trained on, and its prediction says so.
TRAINING_POSE_LIMITS = (35.0, 25.0, 20.0)
_POSE_INDEX = np.array(POSE_POINTS)
POSE_KEYS = ("yaw", "pitch", "roll")


@lru_cache(maxsize=1)
def head_model() -> np.ndarray:
    """float64 [P, 3]: the head's POSE_POINTS, in face heights (x right, y down, z away from the camera)."""
    with np.load(HEAD_MODEL_PATH) as data:
        return data["points"][data["pose_points"]].astype(np.float64)


@lru_cache(maxsize=8)
def _camera(width: int, height: int) -> np.ndarray:
    """The assumed pinhole: focal length the image's larger side, centred."""
    focal = float(max(width, height))
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def head_pose(points: np.ndarray, width: int, height: int) -> tuple[float, float, float] | None:
    """Degrees (yaw, pitch, roll) of a face's landmarks [468, 2] in pixels, in an image ``width`` x ``height``
    pixels; None where no pose fits. SQPnP: the global least-squares fit, no starting guess (about a third of
    the time of OpenCV's iterative fit from the last pose). The rest is one compiled call: serve calls this
    right after the face mesh, where each numpy or OpenCV call, and Python's scalar arithmetic, runs from cold
    caches (26 us a frame in Python scalars, 9 compiled, inside serve's pipeline in a busy hour)."""
    image = points[_POSE_INDEX].astype(np.float64)  # float32 points make OpenCV fit in float32
    ok, rvec, tvec = cv2.solvePnP(head_model(), image, _camera(width, height), None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    yaw, pitch, roll = _fit_angles(rvec, tvec)
    return None if math.isnan(yaw) else (yaw, pitch, roll)


def line_of_sight(position: np.ndarray) -> np.ndarray:
    """The smallest rotation [3, 3] turning the camera's axis (0, 0, 1) onto the direction of ``position``."""
    return _line_of_sight(*(float(v) for v in position))


@njit(cache=True)
def _line_of_sight(x, y, z):
    sin = math.hypot(x, y)  # |(0, 0, 1) x position|, the rotation's axis (-y, x, 0) before scaling
    if sin < 1e-12 * abs(z):
        return np.eye(3)
    angle = math.atan2(sin, z) / sin
    return _rotation(-y * angle, x * angle, 0.0)


@njit(cache=True)
def _rotation(x, y, z):
    """The rotation matrix [3, 3] of the rotation vector (x, y, z), as cv2.Rodrigues gives it."""
    theta = math.sqrt(x * x + y * y + z * z)
    if theta < 1e-12:
        return np.eye(3)
    x, y, z = x / theta, y / theta, z / theta
    c, s = math.cos(theta), math.sin(theta)
    t = 1.0 - c
    return np.array([[c + t * x * x, t * x * y - s * z, t * x * z + s * y],
                     [t * x * y + s * z, c + t * y * y, t * y * z - s * x],
                     [t * x * z - s * y, t * y * z + s * x, c + t * z * z]])


@njit(cache=True)
def _angles(r):
    """Degrees (yaw, pitch, roll) of a rotation matrix [3, 3] R = Rz(roll) Ry(yaw) Rx(pitch)."""
    yaw = math.asin(min(max(-r[2, 0], -1.0), 1.0))
    return math.degrees(yaw), math.degrees(math.atan2(r[2, 1], r[2, 2])), math.degrees(math.atan2(r[1, 0], r[0, 0]))


@njit(UniTuple(float64, 3)(float64[:, :], float64[:, :]), cache=True)
def _fit_angles(rvec, tvec):
    """Degrees (yaw, pitch, roll) of a fit's rotation and translation vectors [3, 1], relative to the line of
    sight; NaNs where the head is not in front of the camera or the rotation is not finite."""
    x, y, z = tvec[0, 0], tvec[1, 0], tvec[2, 0]
    if not z > 0 or not (math.isfinite(rvec[0, 0]) and math.isfinite(rvec[1, 0]) and math.isfinite(rvec[2, 0])):
        return math.nan, math.nan, math.nan
    # Relative to the line of sight, not the camera's axis: a face off to one side that looks into the
    # camera reads 0, as the training data's faces do wherever they are in the image.
    sight, head = _line_of_sight(x, y, z), _rotation(rvec[0, 0], rvec[1, 0], rvec[2, 0])
    relative = np.empty((3, 3))  # sight^T head, in loops: numba's matrix product needs SciPy's BLAS
    for i in range(3):
        for j in range(3):
            relative[i, j] = sight[0, i] * head[0, j] + sight[1, i] * head[1, j] + sight[2, i] * head[2, j]
    return _angles(relative)


def beyond_training(pose: tuple[float, float, float]) -> bool:
    """Whether a head is turned further than the training data's poses."""
    return not all(abs(a) <= limit for a, limit in zip(pose, TRAINING_POSE_LIMITS))
