"""Head pose from landmarks: London dev faces (CC BY 4.0) re-projected at known yaw and pitch, as
offline.synth.render films them (each face put in the face frame by its own 3-D fit, turned, projected)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.head_pose import HEAD_MODEL_PATH, TRAINING_POSE_LIMITS, beyond_training, head_model, head_pose

WIDTH, HEIGHT = 640, 480
DISTANCE = 3.5  # face heights from the camera: a face 140 px tall, a webcam at arm's length


def _film(face_frame: np.ndarray, yaw: float, pitch: float, focal: float, aside: float = 0.0) -> np.ndarray:
    """Pixels [468, 2] of a face-frame face turned by (yaw, pitch) from looking into the camera, ``aside``
    face heights right of the camera's axis (there turned towards the camera, then by yaw and pitch)."""
    from offline.synth.faces import photo_pose
    from offline.synth.render import rotations

    from edgeemo.head_pose import line_of_sight

    place = np.array([aside, 0.0, DISTANCE])
    turn = line_of_sight(place) @ rotations(np.radians([[yaw, pitch, 0.0]]))[0] @ rotations(photo_pose()[None])[0]
    camera = face_frame @ turn.T + place
    return np.stack([focal * camera[:, 0] / camera[:, 2] + WIDTH / 2,
                     focal * camera[:, 1] / camera[:, 2] + HEIGHT / 2], axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def face_frames():
    from offline.synth.faces import face_to_image, real_faces, to_face_frame

    faces = real_faces()
    both = np.concatenate([faces.neutral, faces.smiling])  # 50 people, resting and smiling
    return to_face_frame(both, face_to_image(both))


@pytest.mark.parametrize("focal, aside", [(WIDTH, 0.0), (0.8 * WIDTH, 0.0), (WIDTH, 1.2)],
                         ids=["assumed-focal", "wider-lens", "off-centre"])
def test_pose_is_within_5_degrees_on_real_faces_turned_to_known_angles(face_frames, focal, aside):
    errors = []
    for yaw in (-30, -15, 0, 15, 30):
        for pitch in (-20, -10, 0, 10, 20):
            for face in face_frames:
                got = head_pose(_film(face, yaw, pitch, focal, aside), WIDTH, HEIGHT)
                errors.append((got[0] - yaw, got[1] - pitch, got[2]))
    worst = np.abs(errors).max(axis=0)
    assert (worst < 5.0).all(), f"worst error yaw, pitch, roll: {worst}"


def test_a_face_turned_further_than_the_training_data_is_flagged():
    assert not beyond_training((34.0, -24.0, 19.0))
    assert beyond_training((40.0, 0.0, 0.0)) and beyond_training((0.0, -26.0, 0.0))


def test_training_pose_limits_are_the_synthetic_training_datas():
    from offline.synth.render import SETUPS

    assert TRAINING_POSE_LIMITS == max(s.pose_limit for s in SETUPS.values())


def test_shipped_head_model_matches_its_derivation():
    from offline.synth.head_model import derive_head_model

    derived = derive_head_model()
    with np.load(HEAD_MODEL_PATH) as shipped:
        for key, value in derived.items():
            np.testing.assert_allclose(shipped[key], value, atol=1e-6)
    assert head_model().shape == (len(derived["pose_points"]), 3)
