"""Fit the smile (AU6 cheek raiser + AU12 lip corner puller) to real neutral-to-smiling pairs.

What is fitted is what the models see: for each London dev face of the calibration half, the smiling-minus-
neutral displacement of its landmarks after ``edgeemo.normalize`` (from pixels, as for any real frame). The
synthetic smile is a 3-D field in the face frame (``offline.synth.fields``), placed on that face's neutral
landmarks in its own head pose and normalised the same way. The control displacements (mirror-symmetric: a
right control and its mirror image share one vector, a midline one does not move sideways) minimise the
squared difference over all calibration faces and landmarks. Depth, which frontal photographs barely show,
is pulled weakly towards MediaPipe's own 3-D estimate of the mean smile.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edgeemo.normalize import normalize_landmarks
from offline.synth.faces import (
    LONDON_DEV_IMAGE_SIZE, Similarity, canonical_face, face_to_image, real_faces, to_face_frame,
)
from offline.synth.fields import MIRROR_X, spread_weights

# Control landmarks (subject's right side and midline) and falloff radius (face units along the mesh). They
# cover where the real smile moves landmarks by more than a tenth of its largest displacement: AU12 the lips,
# the cheeks beside and below the mouth, the chin and the nose wings; AU6 the lower eyelid and the cheek.
CONTROLS: dict[str, tuple[tuple[int, ...], float]] = {
    "AU6": ((145, 230, 118, 50, 35, 101, 116, 117, 111, 143, 34, 123, 119, 100, 47, 126, 142, 23, 24, 22, 110, 25),
            0.2),
    "AU12": ((61, 40, 91, 206, 212, 204, 0, 13, 14, 17, 200, 152, 57, 186, 43, 106, 182, 214, 210, 169, 150, 136,
              36, 203, 165, 92, 39, 181, 84, 48, 64, 98, 205, 187, 147, 213, 192, 138, 135, 58, 172, 32, 140, 176,
              208, 171, 148, 175, 199, 18, 16, 15, 12, 11, 167, 164), 0.3),
}
DEPTH_PRIOR = 0.1  # weight of MediaPipe's depth per face, against 1 for the measured image displacement
RIDGE = 1e-6
STEP = 1e-3  # face units: small enough that the normalisation is linear in it


def normalized(landmarks: np.ndarray) -> np.ndarray:
    """London dev landmarks [..., 468, 3] in image units, normalised as edgeemo does from pixels."""
    return normalize_landmarks(landmarks[..., :2] * LONDON_DEV_IMAGE_SIZE).astype(np.float64)


def place(neutral: np.ndarray, pose: Similarity, fields: np.ndarray) -> np.ndarray:
    """Faces [n, 468, 3] moved by face-frame fields [..., 468, 3] turned into each face's head pose."""
    shape = (len(neutral),) + (1,) * (fields.ndim - 2)
    scale = pose.scale.reshape(shape + (1, 1))
    rotation = pose.rotation.reshape(shape + (3, 3))
    return neutral.reshape(shape + neutral.shape[1:]) + scale * (fields @ rotation)


def real_smile_displacements(faces: np.ndarray) -> np.ndarray:
    """float [n, 468, 2]: normalised smiling minus normalised neutral, for London dev faces at ``faces``."""
    real = real_faces()
    return normalized(real.smiling[faces]) - normalized(real.neutral[faces])


def real_smile_depth(faces: np.ndarray) -> np.ndarray:
    """float [468]: MediaPipe's mean depth change of the smile, in the face frame."""
    real = real_faces()
    neutral, smiling = real.neutral[faces], real.smiling[faces]
    moved = to_face_frame(smiling, face_to_image(smiling)) - to_face_frame(neutral, face_to_image(neutral))
    return moved[..., 2].mean(axis=0)


def control_basis(landmarks: tuple[int, ...], radius: float) -> np.ndarray:
    """float [3 * C, 468, 3]: the face-frame field of a unit displacement of each control along each axis."""
    weights = spread_weights(canonical_face(), np.array(landmarks), radius)
    axes = np.eye(3)
    own = weights.own.T[:, None, :, None] * axes[None, :, None, :]  # [C, axis, 468, 3]
    mirrored = weights.mirrored.T[:, None, :, None] * (axes * MIRROR_X)[None, :, None, :]
    basis = own + mirrored
    basis[weights.midline, 0] = 0.0  # a midline control cannot move sideways without breaking the symmetry
    return basis.reshape(-1, len(canonical_face()), 3)


@lru_cache(maxsize=4)
def fit_smile(faces: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Control displacements {"AU6": [C6, 3], "AU12": [C12, 3]} fitted to the real smiles of ``faces``."""
    index = np.array(faces)
    neutral = real_faces().neutral[index]
    pose = face_to_image(neutral)
    basis = np.concatenate([control_basis(*CONTROLS[code]) for code in CONTROLS])  # [K, 468, 3]
    # The normalised image displacement of each face under each basis field, to first order: [n, K, 468, 2].
    response = (normalized(place(neutral, pose, STEP * basis)) - normalized(neutral)[:, None]) / STEP
    design = response.transpose(0, 2, 3, 1).reshape(-1, len(basis))
    target = real_smile_displacements(index).ravel()
    prior = np.sqrt(DEPTH_PRIOR * len(index))
    design = np.concatenate([design, prior * basis[..., 2].T])
    target = np.concatenate([target, prior * real_smile_depth(index)])
    gram = design.T @ design + RIDGE * np.eye(len(basis))
    solution = np.linalg.solve(gram, design.T @ target).reshape(-1, 3)
    sizes = np.cumsum([len(CONTROLS[code][0]) for code in CONTROLS])[:-1]
    return dict(zip(CONTROLS, np.split(solution, sizes)))
