"""The face-mesh landmarker and the normalisation, on real faces (astronaut, London dev)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeemo.face import mirror_points
from edgeemo.landmarker import FaceMeshLandmarker, _read_wire, graph_threads, landmarks_to_pixels
from edgeemo.normalize import normalize_landmarks

LEFT_EYE, RIGHT_EYE = (33, 133), (362, 263)  # outer and inner corners
MOUTH = (61, 291, 13, 14)  # corners, inner upper and lower lip


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def landmarker():
    with FaceMeshLandmarker(static=True) as lm:
        yield lm


@pytest.fixture(scope="module")
def london_reference(london_dev):
    with np.load(london_dev / "landmarks.npz") as data:
        return {key: data[key] for key in ("landmarks", "face_id", "expression")}


def test_importing_the_module_does_not_import_mediapipe():
    code = "import sys, edgeemo.landmarker; sys.exit('mediapipe' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_astronaut_face_lies_in_the_image_with_eyes_above_mouth(landmarker, astronaut_rgb):
    points = landmarker.detect(astronaut_rgb)
    assert points.shape == (468, 2) and points.dtype == np.float32
    height, width = astronaut_rgb.shape[:2]
    assert (points >= 0).all() and (points[:, 0] < width).all() and (points[:, 1] < height).all()
    assert points[list(LEFT_EYE + RIGHT_EYE), 1].max() < points[list(MOUTH), 1].min()
    assert points[LEFT_EYE, 0].mean() < points[RIGHT_EYE, 0].mean()  # subject's right eye is on the image's left


def test_static_mode_agrees_with_london_dev_reference(landmarker, london_dev, london_reference):
    errors = []
    for i in range(0, 100, 10):
        face_id, expression = london_reference["face_id"][i], london_reference["expression"][i]
        rgb = read_rgb(london_dev / "images" / f"{face_id}_{expression}.jpg")
        reference = london_reference["landmarks"][i, :, :2] * np.array([rgb.shape[1], rgb.shape[0]])
        errors.append(np.abs(landmarker.detect(rgb) - reference))
    errors = np.stack(errors)  # [images, 468, 2] pixels, on 480x480 images
    assert errors.mean() < 0.25, f"mean disagreement {errors.mean():.2f} px"
    assert errors.max() < 1.5, f"largest disagreement {errors.max():.2f} px"


@pytest.mark.parametrize("image", ["blank", "noise"])
def test_no_face_gives_none(landmarker, image):
    rng = np.random.default_rng(0)
    rgb = np.zeros((240, 320, 3), np.uint8) if image == "blank" else rng.integers(0, 256, (240, 320, 3), np.uint8)
    assert landmarker.detect(rgb) is None


def test_landmark_parsing_without_the_fast_path_gives_the_same_pixels(astronaut_rgb):
    from mediapipe.python.solutions.face_mesh import FaceMesh

    with FaceMesh(static_image_mode=True) as mesh:
        landmarks = mesh.process(astronaut_rgb).multi_face_landmarks[0]
    fast = landmarks_to_pixels(landmarks.SerializeToString(), 512, 400)
    assert _read_wire(np.frombuffer(landmarks.SerializeToString(), np.uint8), 512, 400, np.empty_like(fast))
    expected = np.array([(p.x * 512, p.y * 400) for p in landmarks.landmark], np.float32)
    np.testing.assert_allclose(fast, expected, rtol=1e-6)
    for p in landmarks.landmark:  # another wire encoding than the one the fast path reads
        p.visibility = 0.5
    assert not _read_wire(np.frombuffer(landmarks.SerializeToString(), np.uint8), 512, 400, np.empty_like(fast))
    np.testing.assert_array_equal(landmarks_to_pixels(landmarks.SerializeToString(), 512, 400), fast)


def test_the_landmarker_finds_what_mediapipes_own_process_finds(london_dev):
    """The landmarker runs FaceMesh's graph without FaceMesh.process (edgeemo.landmarker._run): the same faces, to
    the bit, frame by frame in tracking mode, on real faces: two people's neutral and smiling photos, and a frame
    with no face between them."""
    from mediapipe.python.solutions.face_mesh import FaceMesh

    frames = [read_rgb(london_dev / "images" / f"{face}_{expression}.jpg")
              for face in ("001", "004") for expression in ("neutral", "neutral", "smiling", "smiling")]
    frames.insert(4, np.zeros_like(frames[0]))
    with FaceMeshLandmarker(static=False, max_faces=2) as ours, FaceMesh(static_image_mode=False, max_num_faces=2,
                                                                          refine_landmarks=False) as mesh:
        counts = []
        for rgb in frames:
            theirs = mesh.process(rgb).multi_face_landmarks or []
            expected = [np.array([(p.x * rgb.shape[1], p.y * rgb.shape[0]) for p in face.landmark], np.float32)
                        for face in theirs]
            found = ours.detect_all(rgb)
            assert len(found) == len(expected)
            for a, b in zip(found, expected):
                np.testing.assert_array_equal(a, b)
            counts.append(len(found))
    assert counts == [1, 1, 1, 1, 0, 1, 1, 1, 1]  # one face in each photo, none in the blank frame
    with FaceMeshLandmarker(static=True) as lm, pytest.raises(ValueError, match="RGB image"):
        lm.detect(frames[0][:, :, 0])


def _rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def faces(landmarker, london_dev):
    """Normalised neutral and smiling landmarks [468, 2] of three London dev faces, and their neutral images."""
    out = []
    for face_id in ("001", "004", "009"):
        neutral = read_rgb(london_dev / "images" / f"{face_id}_neutral.jpg")
        smiling = read_rgb(london_dev / "images" / f"{face_id}_smiling.jpg")
        out.append((neutral, normalize_landmarks(landmarker.detect(neutral)),
                    normalize_landmarks(landmarker.detect(smiling))))
    return out


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)  # per landmark, in face heights (the canonical face is 1 high)


def test_a_smile_moves_normalised_landmarks_more_than_the_tolerances_below(faces):
    for _, neutral, smiling in faces:
        assert _distance(neutral, smiling).mean() > 0.012
        assert smiling[291, 0] - smiling[61, 0] > neutral[291, 0] - neutral[61, 0]  # wider mouth


TRANSFORMS = {
    "rotate+15": lambda rgb: _rotate(rgb, 15.0),
    "rotate-15": lambda rgb: _rotate(rgb, -15.0),
    "scale0.6": lambda rgb: cv2.resize(rgb, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA),
    "scale1.5": lambda rgb: cv2.resize(rgb, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR),
}


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_normalisation_removes_rotation_and_scale(landmarker, faces, transform):
    for rgb, neutral, _ in faces:
        moved = normalize_landmarks(landmarker.detect(TRANSFORMS[transform](rgb)))
        distance = _distance(moved, neutral)
        assert distance.mean() < 0.007 and distance.max() < 0.02, f"{distance.mean():.4f} {distance.max():.4f}"


def test_mirror_points_matches_a_really_mirrored_face(landmarker, faces):
    for rgb, neutral, _ in faces:
        mirrored = normalize_landmarks(landmarker.detect(cv2.flip(rgb, 1)))
        distance = _distance(mirrored, mirror_points(neutral))
        assert distance.mean() < 0.008 and distance.max() < 0.02, f"{distance.mean():.4f} {distance.max():.4f}"
        flipped_only = neutral.copy()  # x -> 1 - x without swapping left and right landmarks: far off
        flipped_only[:, 0] = 1.0 - flipped_only[:, 0]
        assert _distance(mirrored, flipped_only).mean() > 10 * distance.mean()


def _mediapipe_threads() -> set[str]:
    """The ids of this process's threads that mediapipe named (mediapipe/ID)."""
    names = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().startswith("mediapipe"):
                names.add(task.name)
        except FileNotFoundError:  # a thread that ended meanwhile (an earlier test's face mesh closing)
            pass
    return names


@pytest.mark.parametrize("threads", [1, 2])
def test_the_face_mesh_runs_its_graph_on_the_threads_asked_for(threads):
    """Not mediapipe's default pool of one thread per core: serve shares the CPUs among its streams' face meshes
    (edgeemo.landmarker.graph_threads); ten streams with pools of two dropped frames."""
    before = _mediapipe_threads()
    with FaceMeshLandmarker(static=False, threads=threads) as landmarker:
        landmarker.detect(np.zeros((240, 320, 3), np.uint8))
        assert len(_mediapipe_threads() - before) == threads


def test_face_meshes_share_the_cpus_this_process_may_use():
    cpus = len(os.sched_getaffinity(0))
    assert graph_threads() == cpus
    assert graph_threads(cpus) == 1 and graph_threads(10 * cpus) == 1
    with pytest.raises(ValueError, match="streams"):
        graph_threads(0)


@pytest.mark.parametrize("threads", [1, 2])
def test_serves_multi_face_landmarker_passes_the_threads_on(threads):
    from edgeemo.multi_face import MultiFaceLandmarker

    before = _mediapipe_threads()
    with MultiFaceLandmarker(max_faces=1, threads=threads) as landmarker:  # one face: the one-face mesh only
        landmarker.detect_all(np.zeros((240, 320, 3), np.uint8))
        assert len(_mediapipe_threads() - before) == threads
