"""The real faces behind the synthetic ones: London dev (50 adults, neutral and smiling), in a 3-D face frame.

DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666, CC BY 4.0; MediaPipe
landmarks in ``offline/resources/london-dev`` (see its README for the attribution to keep).

The face frame: x to the image's right, y down, z away from the camera (MediaPipe's depth sign), the
midline at x = 0, the origin at the centroid of edgeemo's stable points, the neutral mean face 1 unit tall.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from edgeemo.face import STABLE_POINTS, face_template
from offline.data.face_template import london_dev_landmarks, mean_face

LONDON_DEV_IMAGE_SIZE = 480  # the landmarks are in [0, 1] of a 480x480 image
ATTRIBUTION = (
    "identities from the Face Research Lab London Set (DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666, "
    "CC BY 4.0)"
)


class RealFaces(NamedTuple):
    neutral: np.ndarray  # float64 [50, 468, 3], as MediaPipe gave them: x, y in [0, 1] of the image, z depth
    smiling: np.ndarray  # float64 [50, 468, 3], the same people smiling
    face_id: np.ndarray  # str [50]


class Similarity(NamedTuple):
    """image points = scale * face points @ rotation + offset (rows are points)."""

    scale: np.ndarray  # [...]
    rotation: np.ndarray  # [..., 3, 3]
    offset: np.ndarray  # [..., 3]


@lru_cache(maxsize=1)
def real_faces() -> RealFaces:
    data = london_dev_landmarks()
    expression, face_id = data["expression"], data["face_id"]
    neutral, smiling = expression == "neutral", expression == "smiling"
    if not (face_id[neutral] == face_id[smiling]).all():
        raise ValueError("london-dev landmarks.npz: neutral and smiling rows are not in the same face order")
    landmarks = data["landmarks"].astype(np.float64)
    return RealFaces(landmarks[neutral], landmarks[smiling], face_id[neutral])


def calibration_half() -> np.ndarray:
    """Indices of the 25 faces the smile is fitted on; every other face (same mix of sex and ethnicity)."""
    return np.arange(0, len(real_faces().face_id), 2)


def holdout_half() -> np.ndarray:
    """Indices of the 25 faces kept out of the smile fit, for judging it."""
    return np.arange(1, len(real_faces().face_id), 2)


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """float64 [468, 3]: the mean neutral face in the face frame, exactly mirror-symmetric."""
    mirror = face_template().mirror
    face = mean_face(real_faces().neutral)
    face -= face.mean(0)
    # The symmetry plane's normal is the face's x axis (as in offline.data.face_template), image y its y axis.
    mid = face[mirror == np.arange(len(mirror))]
    normal = np.linalg.svd(mid - mid.mean(0))[2][-1]
    x_axis = normal if normal[0] > 0 else -normal
    y_axis = np.array([0.0, 1.0, 0.0]) - x_axis[1] * x_axis
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    face = face @ np.stack([x_axis, y_axis, z_axis], axis=1)
    face = 0.5 * (face + face[mirror] * np.array([-1.0, 1.0, 1.0]))
    face -= face[list(STABLE_POINTS)].mean(0)
    return face / np.ptp(face[:, 1])


def fit_similarity(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The rotation, scale and offset (no reflection) that best map source [..., K, 3] onto target [..., K, 3]."""
    mu_s, mu_t = source.mean(-2, keepdims=True), target.mean(-2, keepdims=True)
    a, b = source - mu_s, target - mu_t
    u, s, vt = np.linalg.svd(np.swapaxes(a, -1, -2) @ b)
    d = np.ones(s.shape)
    d[..., -1] = np.sign(np.linalg.det(u @ vt))
    rotation = (u * d[..., None, :]) @ vt
    scale = (s * d).sum(-1) / (a**2).sum((-1, -2))
    offset = mu_t[..., 0, :] - scale[..., None] * (mu_s @ rotation)[..., 0, :]
    return Similarity(scale, rotation, offset)


def face_to_image(faces: np.ndarray) -> Similarity:
    """Per face [..., 468, 3] in image units: the transform from the face frame, fitted on the stable points."""
    stable = list(STABLE_POINTS)
    return fit_similarity(np.broadcast_to(canonical_face()[stable], faces[..., stable, :].shape), faces[..., stable, :])


@lru_cache(maxsize=1)
def photo_pose() -> np.ndarray:
    """Radians [yaw, pitch, roll]: the London dev neutral photos' mean head pose in the face frame, in the
    convention of offline.synth.render.rotations (yaw 0.4, pitch -4.2, roll 0.2 degrees)."""
    turn = np.swapaxes(face_to_image(real_faces().neutral).rotation, -1, -2)  # film() turns points by turn.T
    yaw = -np.arcsin(np.clip(turn[:, 2, 0], -1.0, 1.0))
    pitch = np.arctan2(turn[:, 2, 1], turn[:, 2, 2])
    roll = np.arctan2(turn[:, 1, 0], turn[:, 0, 0])
    return np.stack([yaw, pitch, roll], axis=1).mean(axis=0)


def to_face_frame(points: np.ndarray, transform: Similarity) -> np.ndarray:
    """Image-unit points [..., 468, 3] into the face frame: the inverse of ``transform``."""
    centred = points - transform.offset[..., None, :]
    return centred @ np.swapaxes(transform.rotation, -1, -2) / transform.scale[..., None, None]
