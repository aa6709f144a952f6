"""Head pose (yaw, pitch, roll in degrees) from one face's landmarks: ``cv2.solvePnP`` against a 3-D head.

The head (``resources/head_model.npz``, written by ``python -m offline.head_model``) is the London dev mean
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

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from edgeemo.face import STABLE_POINTS

HEAD_MODEL_PATH = Path(__file__).parent / "resources" / "head_model.npz"
# STABLE_POINTS, then the nose (tip, base, wings), the cheekbones and the brow ridge's middle.
POSE_POINTS = (*STABLE_POINTS, 1, 4, 5, 2, 98, 327, 129, 358, 116, 345, 50, 280, 9, 8, 93, 323)
# How far the default bundle's synthetic training data turns heads, in degrees from looking into the
# camera: yaw, pitch, roll (offline.synth.render SETUPS["live"].pose_limit; a test checks they agree).
# A face turned further is outside what the models were trained on, and its prediction says so.
TRAINING_POSE_LIMITS = (35.0, 25.0, 20.0)
POSE_KEYS = ("yaw", "pitch", "roll")


@lru_cache(maxsize=1)
def head_model() -> np.ndarray:
    """float64 [P, 3]: the head's POSE_POINTS, in face heights (x right, y down, z away from the camera)."""
    with np.load(HEAD_MODEL_PATH) as data:
        return data["points"][data["pose_points"]].astype(np.float64)


class HeadPose:
    """Yaw, pitch and roll of a face's landmarks [468, 2] in pixels, fitted afresh or from the last fit.

    Keep one per tracked face: it starts each fit from that face's last pose, which makes it faster and steadier.
    """

    def __init__(self) -> None:
        self._rvec: np.ndarray | None = None
        self._tvec: np.ndarray | None = None

    def estimate(self, points: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
        """Degrees (yaw, pitch, roll) of a face in an image ``width`` x ``height`` pixels."""
        focal = float(max(width, height))
        camera = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
        image = np.ascontiguousarray(points[list(POSE_POINTS)], dtype=np.float64)
        guess = self._rvec is not None
        ok, rvec, tvec = cv2.solvePnP(head_model(), image, camera, None, self._rvec, self._tvec,
                                      useExtrinsicGuess=guess, flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok or tvec[2, 0] <= 0:  # a fit behind the camera: start the next one afresh
            self._rvec = self._tvec = None
            return (float("nan"),) * 3
        self._rvec, self._tvec = rvec, tvec
        # Relative to the line of sight, not the camera's axis: a face off to one side that looks into the
        # camera reads 0, as the training data's faces do wherever they are in the image.
        return angles(line_of_sight(tvec[:, 0]).T @ cv2.Rodrigues(rvec)[0])


def line_of_sight(position: np.ndarray) -> np.ndarray:
    """The smallest rotation [3, 3] turning the camera's axis (0, 0, 1) onto the direction of ``position``."""
    ray = position / np.linalg.norm(position)
    axis = np.cross([0.0, 0.0, 1.0], ray)
    sin, cos = np.linalg.norm(axis), ray[2]
    if sin < 1e-12:
        return np.eye(3)
    return cv2.Rodrigues(axis / sin * np.arctan2(sin, cos))[0]


def angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """Degrees (yaw, pitch, roll) of a rotation matrix R = Rz(roll) Ry(yaw) Rx(pitch)."""
    yaw = np.arcsin(np.clip(-rotation[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rotation[2, 1], rotation[2, 2])
    roll = np.arctan2(rotation[1, 0], rotation[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def beyond_training(pose: tuple[float, float, float]) -> bool:
    """Whether a head is turned further than the training data's poses (or its pose is unknown)."""
    return not all(abs(a) <= limit for a, limit in zip(pose, TRAINING_POSE_LIMITS))
