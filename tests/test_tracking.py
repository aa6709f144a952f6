"""The face tracker and its assignment, on real London dev landmarks (CC BY 4.0) moved about."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgeemo.normalize import normalize_landmarks
from edgeemo.tracking import FaceTracker, assign, face_box


def _best(cost: np.ndarray) -> tuple[int, float]:
    """Most pairs, then least cost, by trying every assignment."""
    rows, cols = cost.shape
    best = (0, 0.0)
    for choice in itertools.product(range(-1, cols), repeat=rows):
        picked = [c for c in choice if c >= 0]
        total = sum(cost[r, c] for r, c in enumerate(choice) if c >= 0)
        if len(set(picked)) == len(picked) and np.isfinite(total) and (len(picked), -total) > (best[0], -best[1]):
            best = (len(picked), total)
    return best


def test_assignment_is_the_best_by_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        rows, cols = rng.integers(0, 6, 2)
        cost = rng.uniform(0, 3, (rows, cols))
        cost[rng.random((rows, cols)) < 0.3] = np.inf
        pairs = assign(cost)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        count, total = _best(cost)
        assert len(pairs) == count and sum(cost[r, c] for r, c in pairs) == pytest.approx(total)


def test_face_box_is_opencvs_bounding_rect(london_dev):
    import cv2

    with np.load(london_dev / "landmarks.npz") as data:
        faces = data["landmarks"][:, :, :2]
    rng = np.random.default_rng(0)
    for points in [faces[i] * rng.uniform(100, 2000) + rng.uniform(-50, 50, 2) for i in range(len(faces))]:
        for dtype in (np.float32, np.float64):
            x, y, w, h = cv2.boundingRect(points.astype(np.float32))
            assert face_box(points.astype(dtype)) == (x, y, x + w, y + h)


@pytest.fixture(scope="module")
def two_people(london_dev):
    with np.load(london_dev / "landmarks.npz") as data:
        neutral = data["landmarks"][data["expression"] == "neutral"][:2, :, :2] * 480
    return [p.astype(np.float32) for p in neutral]


def _step(tracker, faces):
    return tracker.update([face_box(p) for p in faces], [normalize_landmarks(p) for p in faces])


def test_two_faces_keep_their_ids_as_they_move_and_whatever_order_they_are_found_in(two_people):
    a, b = two_people
    tracker = FaceTracker()
    assert _step(tracker, [a, b + [500, 0]]) == [0, 1]
    for i in range(1, 20):
        moved_a, moved_b = a + [10 * i, 3 * i], b + [500 - 10 * i, 0]
        faces = [moved_a, moved_b] if i % 2 else [moved_b, moved_a]  # MediaPipe's order means nothing
        got = _step(tracker, faces)
        assert got == ([0, 1] if i % 2 else [1, 0])


def test_a_missed_face_is_found_again_where_its_motion_took_it_and_a_dropped_one_gets_a_new_id(two_people):
    a, _ = two_people
    tracker = FaceTracker()
    for i in range(5):
        assert _step(tracker, [a + [8 * i, 0]]) == [0]
    for _ in range(5):  # hidden for 5 frames, still moving
        assert _step(tracker, []) == []
    assert _step(tracker, [a + [8 * 10, 0]]) == [0]
    tracker.drop(0)
    assert _step(tracker, [a + [8 * 11, 0]]) == [1]


def test_someone_else_far_away_is_a_new_face_and_a_bent_mesh_over_a_face_is_skipped(two_people):
    a, b = two_people
    tracker = FaceTracker()
    _step(tracker, [a])
    assert _step(tracker, [a, b + [600, 0]]) == [0, 1]
    bent = a.copy()
    bent[:, 1] += np.linspace(0, 60, len(a))  # the mesh smeared down one side, as over a half-hidden face
    assert _step(tracker, [bent, b + [600, 0]]) == [-1, 1]
