"""The canonical face: template, left/right symmetry, normalisation to it."""

import numpy as np
import pytest

from edgeemo.face import N_LANDMARKS, face_template, mirror_points
from edgeemo.normalize import normalize_landmarks

# MediaPipe's own eye sets (face_mesh_connections.FACEMESH_LEFT_EYE / RIGHT_EYE), the subject's left and right.
LEFT_EYE = [249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]
RIGHT_EYE = [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246]


def test_mirror_permutation_is_an_involution_with_midline_fixed_points():
    perm = face_template().mirror
    stable = set(face_template().stable_points.tolist())
    assert {int(perm[i]) for i in stable} == stable
    assert sorted(perm) == list(range(N_LANDMARKS))
    np.testing.assert_array_equal(perm[perm], np.arange(N_LANDMARKS))
    for midline in (0, 1, 4, 6, 10, 13, 14, 17, 152, 168):
        assert perm[midline] == midline


def test_mirror_permutation_swaps_mediapipe_left_and_right_eye():
    perm = face_template().mirror
    assert sorted(perm[LEFT_EYE]) == RIGHT_EYE
    for left, right in ((263, 33), (362, 133), (291, 61), (454, 234)):
        assert perm[left] == right


def test_mirroring_twice_is_the_identity_and_a_left_eye_landmark_lands_on_the_right_eye(london_dev):
    data = np.load(london_dev / "landmarks.npz")
    pixels = data["landmarks"][:4, :, :2] * 480
    faces = normalize_landmarks(pixels)
    np.testing.assert_allclose(mirror_points(mirror_points(faces)), faces, atol=1e-6)
    mirrored = mirror_points(faces)
    # The landmark now at index 33 (right eye's outer corner) is the mirror image of the left eye's corner 263.
    np.testing.assert_allclose(mirrored[:, 33, 0], 1.0 - faces[:, 263, 0], atol=1e-6)
    assert (mirrored[:, 33, 0] < 0.5).all() and (mirrored[:, 263, 0] > 0.5).all()


def test_normalising_a_mirrored_face_equals_mirroring_the_normalised_face(london_dev):
    data = np.load(london_dev / "landmarks.npz")
    pixels = data["landmarks"][:10, :, :2] * 480
    flipped = pixels[:, face_template().mirror, :].copy()
    flipped[..., 0] = 480 - flipped[..., 0]
    diff = normalize_landmarks(flipped) - mirror_points(normalize_landmarks(pixels))
    # Exact up to rounding, because the template is symmetric and the stable points are closed under mirroring.
    assert np.abs(diff).max() < 1e-5


def test_normalisation_removes_position_scale_and_roll(london_dev):
    data = np.load(london_dev / "landmarks.npz")
    face = data["landmarks"][0, :, :2].astype(np.float64) * 480
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 0.6 * face @ rotation.T + np.array([130.0, -40.0])
    np.testing.assert_allclose(normalize_landmarks(moved), normalize_landmarks(face), atol=1e-5)


def test_normalised_real_faces_sit_on_the_template(london_dev):
    data = np.load(london_dev / "landmarks.npz")
    faces = normalize_landmarks(data["landmarks"][:, :, :2] * 480)
    template = face_template().template
    assert np.median(np.abs(faces - template)) < 0.03
    # Eyes above the mouth, left eye (subject's) on the image's right.
    assert (faces[:, 159, 1] < faces[:, 13, 1]).all()
    assert (faces[:, 386, 0] > faces[:, 159, 0]).all()


def test_frames_without_a_face_stay_nan(london_dev):
    data = np.load(london_dev / "landmarks.npz")
    frames = data["landmarks"][:3, :, :2] * 480
    frames[1] = np.nan
    out = normalize_landmarks(frames)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


@pytest.mark.offline
def test_shipped_face_template_matches_its_derivation():
    from offline.data.face_template import derive_face_template

    derived = derive_face_template()
    shipped = face_template()
    np.testing.assert_array_equal(derived["mirror"], shipped.mirror)
    np.testing.assert_array_equal(derived["stable_points"], shipped.stable_points)
    np.testing.assert_allclose(derived["template"], shipped.template, atol=1e-6)


def _similarity_reference(points: np.ndarray) -> np.ndarray:
    """The least-squares similarity of the stable points onto the template, written as complex numbers."""
    face = face_template()
    z = points[..., 0] + 1j * points[..., 1]
    stable = z[..., face.stable_points]
    target = face.template[face.stable_points].astype(np.float64) @ np.array([1, 1j])
    s, t = stable - stable.mean(-1, keepdims=True), target - target.mean()
    coef = (np.conj(s) * t).sum(-1, keepdims=True) / (np.abs(s) ** 2).sum(-1, keepdims=True)
    aligned = coef * (z - stable.mean(-1, keepdims=True)) + target.mean()
    return np.stack([aligned.real, aligned.imag], -1)


def test_the_compiled_normalisation_is_the_least_squares_similarity_for_any_batch_shape_and_type(london_dev):
    # Real faces, turned, scaled and moved by a known similarity each, in a [2, 25] batch, as float64 and float32,
    # and one face alone: the compiled kernel gives the reference's numbers (to float32) and undoes the motion.
    data = np.load(london_dev / "landmarks.npz")
    faces = data["landmarks"][:50, :, :2] * 480
    rng = np.random.default_rng(0)
    angle, scale, shift = rng.uniform(-0.5, 0.5, 50), rng.uniform(0.5, 2, 50), rng.uniform(-100, 100, (50, 2))
    rotation = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1).reshape(50, 2, 2)
    moved = (scale[:, None, None] * faces @ rotation.transpose(0, 2, 1) + shift[:, None]).reshape(2, 25, 468, 2)
    for batch in (moved, moved.astype(np.float32), moved[1, 3], moved[:, ::2, ::-1][..., ::-1, :]):
        out = normalize_landmarks(batch)
        assert out.dtype == np.float32 and out.shape == batch.shape
        np.testing.assert_allclose(out, _similarity_reference(batch.astype(np.float64)), atol=2e-6)
    np.testing.assert_allclose(normalize_landmarks(moved).reshape(50, 468, 2), normalize_landmarks(faces), atol=2e-5)
