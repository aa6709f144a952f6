"""Displacement fields on the face mesh: a movement given at a few control landmarks, spread over the face.

A field is float [2, 468, 3]: the displacement of every landmark (face units, x right, y down, z away from
the camera) caused by the controls of the subject's right side and of the left side, so that the two halves
of a face can move with different strengths. Controls are given for the right side and the midline; the left
side gets their mirror images, which makes every field exactly mirror-symmetric at equal strengths.

Between controls, displacements are interpolated (Shepard weights), and faded out with the distance to the
nearest control along the mesh's surface (a smooth, compactly supported Wendland kernel). Pinned landmarks
stay exactly still, and their neighbours nearly so (``hold_still``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edgeemo.face import face_template
from offline.synth.mesh import geodesic_distances

MIRROR_X = np.array([-1.0, 1.0, 1.0])  # how a displacement looks on the other side of the face


class Control(NamedTuple):
    landmark: int
    displacement: tuple[float, float, float]  # face units at intensity 1


class SpreadWeights(NamedTuple):
    own: np.ndarray  # float [468, C]: weight of control c's displacement at each landmark
    mirrored: np.ndarray  # float [468, C]: weight of control c's mirror image (zero for midline controls)
    midline: np.ndarray  # bool [C]: the control sits on the midline (it has no mirror image)


def wendland(r: np.ndarray) -> np.ndarray:
    """1 at r = 0, falling smoothly (C2) to 0 at r = 1 and staying 0 beyond."""
    r = np.clip(r, 0.0, 1.0)
    return (1.0 - r) ** 4 * (4.0 * r + 1.0)


def spread_weights(face3d: np.ndarray, landmarks: np.ndarray, radius: float) -> SpreadWeights:
    """How displacements at ``landmarks`` (right side and midline) and their mirror images spread over the face."""
    mirror = face_template().mirror
    landmarks = np.asarray(landmarks)
    midline = mirror[landmarks] == landmarks
    sources = np.concatenate([landmarks, mirror[landmarks[~midline]]])
    kernel = wendland(geodesic_distances(face3d, sources).T / radius)  # [468, all controls]
    total = kernel.sum(axis=1, keepdims=True)
    weights = np.divide(kernel, total, out=np.zeros_like(kernel), where=total > 0) * kernel.max(axis=1, keepdims=True)
    own = weights[:, : len(landmarks)]
    mirrored = np.zeros_like(own)
    mirrored[:, ~midline] = weights[:, len(landmarks):]
    return SpreadWeights(own, mirrored, midline)


def side_fields(weights: SpreadWeights, displacements: np.ndarray) -> np.ndarray:
    """float [2, 468, 3]: the field of controls with ``displacements`` [C, 3], split into right and left halves."""
    displacements = np.asarray(displacements, dtype=np.float64)
    half = np.where(weights.midline, 0.5, 1.0)[None, :]  # a midline control belongs half to each side
    right = (weights.own * half) @ displacements
    left = (weights.mirrored + weights.own * weights.midline * 0.5) @ (displacements * MIRROR_X)
    return np.stack([right, left])


def control_field(face3d: np.ndarray, controls: tuple[Control, ...], radius: float) -> np.ndarray:
    weights = spread_weights(face3d, np.array([c.landmark for c in controls]), radius)
    return side_fields(weights, np.array([c.displacement for c in controls]))


def hold_still(face3d: np.ndarray, pins: np.ndarray, radius: float) -> np.ndarray:
    """float [468]: 0 at the pins (and their mirror images), rising smoothly to 1 at ``radius`` from them."""
    pins = np.unique(np.concatenate([pins, face_template().mirror[pins]]))
    return 1.0 - wendland(geodesic_distances(face3d, pins) / radius).max(axis=0)


def mirror_field(field: np.ndarray) -> np.ndarray:
    """The mirror image of a one-side field [468, 3]: where it puts each landmark's displacement on the other side."""
    return field[face_template().mirror] * MIRROR_X
