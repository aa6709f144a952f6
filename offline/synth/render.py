"""Film a moving 3-D face with a virtual 640x480 camera, as a face tracker would report it (pixels).

Head pose (yaw, pitch, roll) turns the face in 3-D before a perspective projection; the face's size and place
in the image vary. The faces come from photographs, so their landmarks already carry that camera's
perspective: filming adds a random extra perspective, from a little less than theirs (a camera further
away, which takes some of it off) to a close webcam's. Always adding some taught the first default models
that only a perspective-distorted face is neutral: they called 34 of 50 real neutral photos an emotion,
but 1 of 50 once the same faces were re-projected at 2.5 face heights. Adding none to a webcam's still
left the photos at the edge of the synthetic faces: a mean extra of 0.1 puts the resting mouth 0.016
face heights lower, the nose 0.010 (all of the gap that was left between the mean synthetic and real
resting faces), and the models read the real mouth's higher place as a raised upper lip (disgust).
The tracker adds jitter: a small shake of the whole mesh and a smaller, temporally correlated wobble of
each landmark. Now and then it loses the face for a frame or a few (NaN rows).
Two set-ups: "posed" (CK+-like: near-frontal large face, the head moving a little, about as much as between
the real neutral and smiling London dev photos, ~2 degrees) and "live" (a webcam: turned, smaller, moving).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from offline.synth.faces import photo_pose
from offline.synth.timeline import smooth_noise

IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480
JITTER = 0.0025  # typical per-landmark tracker jitter, in face heights (about 0.6 px on a 250 px face)


class Setup(NamedTuple):
    pose_spread: tuple[float, float, float]  # degrees: yaw, pitch, roll of the head across sequences
    pose_limit: tuple[float, float, float]  # degrees
    head_motion: float  # degrees: how much the head moves within a sequence
    face_px: tuple[float, float]  # face height range in pixels
    perspective: tuple[float, float]  # range of the extra perspective: 1 / camera distance in face heights,
    # added to the photos' own (below 0: a camera further away than theirs)
    lost_sequences: float  # share of sequences in which the tracker loses the face for 1-3 frames


SETUPS = {
    "posed": Setup((4.0, 4.0, 3.0), (10.0, 10.0, 8.0), 1.5, (230.0, 330.0), (-0.15, 0.15), 0.05),
    "live": Setup((12.0, 8.0, 6.0), (35.0, 25.0, 20.0), 2.0, (110.0, 300.0), (-0.15, 0.35), 0.1),
}


def rotations(pose: np.ndarray) -> np.ndarray:
    """float [T, 3, 3] from [T, 3] yaw (about y), pitch (about x), roll (about z) in radians: roll·yaw·pitch."""
    yaw, pitch, roll = pose[:, 0], pose[:, 1], pose[:, 2]
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    rx = np.stack([one, zero, zero, zero, np.cos(pitch), -np.sin(pitch), zero, np.sin(pitch), np.cos(pitch)], -1)
    ry = np.stack([np.cos(yaw), zero, np.sin(yaw), zero, one, zero, -np.sin(yaw), zero, np.cos(yaw)], -1)
    rz = np.stack([np.cos(roll), -np.sin(roll), zero, np.sin(roll), np.cos(roll), zero, zero, zero, one], -1)
    return rz.reshape(-1, 3, 3) @ ry.reshape(-1, 3, 3) @ rx.reshape(-1, 3, 3)


def head_poses(rng: np.random.Generator, frames: int, setup: Setup) -> np.ndarray:
    """float [frames, 3] radians: a held head pose plus slow motion about it.

    Poses spread about the real photos' mean pose, not about the face frame's: the canonical face is
    pitched 4 degrees from how people face a camera, and centring on it showed every synthetic face 4
    degrees off (the mean normalised face 0.012 face heights per landmark from the real mean; 0.002 so).
    """
    centre = np.degrees(photo_pose())
    base = np.clip(centre + rng.normal(0.0, setup.pose_spread), -np.array(setup.pose_limit), setup.pose_limit)
    motion = setup.head_motion * smooth_noise(rng, frames, 3, 0.95)
    return np.radians(base + motion)


def film(rng: np.random.Generator, faces: np.ndarray, setup: Setup,
         turn: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels [T, 468, 2] of face-frame faces [T, 468, 3] (NaN where the face was lost), and the lost mask [T].

    ``turn``: radians [T, 3] (yaw, pitch, roll) added to the head's pose, a deliberate turn on top of its motion."""
    frames = len(faces)
    face_px = rng.uniform(*setup.face_px)
    strength = rng.uniform(*setup.perspective)
    margin = 0.6 * face_px
    centre = np.array([rng.uniform(margin, IMAGE_WIDTH - margin), rng.uniform(margin, IMAGE_HEIGHT - margin)])
    pose = head_poses(rng, frames, setup)
    turned = faces @ np.swapaxes(rotations(pose if turn is None else pose + turn), 1, 2)
    perspective = 1.0 / (1.0 + turned[..., 2:] * strength)
    pixels = centre + face_px * turned[..., :2] * perspective
    pixels += face_px * tracker_jitter(rng, frames, pixels.shape[1])
    lost = lost_frames(rng, frames, setup.lost_sequences)
    pixels[lost] = np.nan
    return pixels, lost


def tracker_jitter(rng: np.random.Generator, frames: int, landmarks: int) -> np.ndarray:
    """float [frames, landmarks, 2] in face heights: whole-mesh shake plus per-landmark wobble."""
    level = JITTER * rng.uniform(0.6, 1.4)
    shake = 1.2 * level * smooth_noise(rng, frames, 2, 0.8)[:, None, :]
    wobble = level * smooth_noise(rng, frames, landmarks * 2, 0.6).reshape(frames, landmarks, 2)
    return shake + wobble


def lost_frames(rng: np.random.Generator, frames: int, share: float) -> np.ndarray:
    """bool [frames]: a run of 1-3 frames without a face in ``share`` of sequences (never all of them)."""
    lost = np.zeros(frames, dtype=bool)
    if frames > 3 and rng.random() < share:
        start = rng.integers(0, frames - 3)
        lost[start:start + rng.integers(1, 4)] = True
    return lost
