"""The real-face benchmark (edgeemo.benchmark.real_faces): its clip scripts, its measures on hand-made label
sequences, and the head-turn warp (offline.data.morph.turn) as MediaPipe and edgeemo.head_pose see it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeemo.benchmark.real_faces import (
    FPS, HAPPY, NEUTRAL, TRANSITION, Timeline, excluded, held_share, longest_wrong_run, measure_clip,
    share_right, summarise, time_to, timeline,
)

N, H = NEUTRAL, HAPPY


def test_clip_scripts_have_the_issue_lengths_and_events():
    assert timeline("a").frames == 300 and set(timeline("a").truth) == {N}
    assert timeline("s").frames == 300 and set(timeline("s").truth) == {H}
    b = timeline("b")
    assert b.frames == 2 * FPS + TRANSITION + 5 * FPS + TRANSITION + 2 * FPS == 300
    assert b.events == {"onset_start": 60, "onset_end": 75, "release_start": 225, "release_end": 240}
    truth = b.truth
    # A transition is labelled by its midpoint: the 15-frame ramp's 8th frame is alpha 0.5.
    assert truth[:67] == [N] * 67 and truth[67:233] == [H] * 166 and truth[233:] == [N] * 67
    c = timeline("c")
    assert c.frames == 3 * FPS + TRANSITION + 2 * FPS + 300 == 465
    assert c.events["first_release_start"] == 90 and c.events["onset_start"] == 165 + 60
    assert c.truth[:98] == [H] * 98 and c.truth[98:165] == [N] * 67 and c.truth[165:] == truth
    d = timeline("d")
    assert np.array_equal(d.alpha, b.alpha) and d.events == b.events
    assert d.yaw[0] == 0 and d.yaw.max() == pytest.approx(20, abs=0.01) and d.yaw.min() == pytest.approx(-20, abs=0.01)
    assert np.argmax(d.yaw) == 75 and np.argmin(d.yaw) == 225  # +20 a quarter in, -20 three quarters in
    assert np.abs(np.diff(d.yaw)).max() < 0.5  # smooth: under half a degree a frame


def test_frames_whose_window_spans_a_transition_are_not_judged():
    line = Timeline("x", np.array([0, 0, 0.5, 1, 1, 1, 1, 1.0]), np.zeros(8), ((2, 3),))
    assert excluded(line, 2).tolist() == [False, False, True, True, True, False, False, False]


def test_measures_on_hand_made_labels():
    truth = [N, N, N, H, H, H, H, N]
    labels = [None, N, H, H, N, N, H, H]
    mask = np.zeros(8, bool)
    assert share_right(labels, truth, mask) == (3, 7)
    assert longest_wrong_run(labels, truth, mask) == 2  # frames 4-5 (frame 7 alone: 1)
    mask[4] = True  # an excluded frame ends a run and is not judged
    assert share_right(labels, truth, mask) == (3, 6)
    assert longest_wrong_run(labels, truth, mask) == 1
    assert time_to(labels, 0, H) == 2 / FPS and time_to(labels, 3, N) == 1 / FPS and time_to(labels, 0, "anger") is None
    assert held_share(labels, mask, 3, 7) == pytest.approx(2 / 3)  # frames 3, 5, 6 judged: H, N, H
    assert held_share(labels, mask, 4, 5) is None


def test_clip_b_measures_and_floors_from_labels():
    line = timeline("b")
    labels = list(line.truth)
    labels[:30] = [None] * 30  # the window filling
    labels[67:80] = [N] * 13  # happiness comes 20 frames after the onset starts
    labels[240:250] = [H] * 10  # and lingers 10 frames after the release ends (inside the window: not judged)
    labels[280:300] = ["disgust"] * 20  # 20 frames wrong at rest: 0.67 s
    m = measure_clip(line, labels, window_frames=30)
    assert m["onset_to_happiness_s"] == pytest.approx(20 / FPS)
    assert m["release_to_neutral_s"] == pytest.approx(10 / FPS)
    assert m["held_smile_happiness"] == 1.0  # frames 105-224 judged, all happiness
    assert m["longest_wrong_run_s"] == pytest.approx(20 / FPS)
    judged = 300 - 30 - (TRANSITION + 30) * 2
    assert m["judged"] == judged and m["right"] == judged - 20
    good = measure_clip(line, [None] * 30 + line.truth[30:], 30)
    s = summarise("b", [m] + [good] * 49, 1.0)
    assert s["people_wrong_over_0.5s"] == 1 and s["people_ever_wrong"] == 1
    assert s["people_held_smile_ge_95pct"] == 50 and s["people_back_to_neutral_within_1s"] == 50
    assert s["onset_to_happiness"] == {"median_s": pytest.approx(7 / FPS), "max_s": pytest.approx(20 / FPS), "never": 0}
    assert all(s["floors"].values())


def test_rest_floors_count_people_and_happiness():
    line = timeline("a")
    rest = [None] * 30 + [N] * 270
    wrong = rest[:100] + ["disgust"] * 16 + rest[116:]  # 0.53 s
    happy = rest[:200] + [H] + rest[201:]
    s = summarise("a", [measure_clip(line, lab, 30) for lab in [wrong] * 3 + [happy] + [rest] * 46], 1.0)
    assert s["resting_frames_neutral"] == pytest.approx(1 - 49 / (270 * 50))
    assert s["people_wrong_over_0.5s"] == 3 and s["ever_happiness"] == 1
    assert s["floors"] == {"a_resting_frames_neutral_ge_98pct": True, "a_no_rest_clip_ever_happiness": False,
                           "a_at_most_2_of_50_people_any_emotion_over_0.5s": False}


def test_clip_c_times_the_first_smile_from_the_first_frame_and_the_first_prediction():
    line = timeline("c")
    labels = [None] * 30 + [N] * 5 + list(line.truth[35:])
    m = measure_clip(line, labels, 30)
    assert m["first_prediction_s"] == 1.0 and m["first_frame_to_happiness_s"] == pytest.approx(35 / FPS)
    s = summarise("c", [m], 1.0)
    assert s["people_first_happiness_within_1s_of_first_prediction"] == 1
    assert s["people_first_happiness_within_1s_of_first_frame"] == 0


@pytest.mark.offline
def test_the_head_turn_warp_turns_the_face_for_mediapipe(london_dev):
    """MediaPipe's landmarks of turned frames, through head_pose: the yaw changes by about +-20 degrees.

    The warp moves each landmark as its 3-D point (MediaPipe's depth) turns, so the nose swings across the
    cheeks as in a real turn; what the photo never showed (the far cheek's side) cannot appear, and
    MediaPipe's depth is flatter than a head, so the measured change is smaller: 14.5-17.3 degrees on these
    faces (2026-12). Tolerance 20 +- 7: well clear of a flat warp of the image (a homography of the face
    plane rotated by 20 degrees reads about +-3) and of no turn, yet never more than asked."""
    from edgeemo.head_pose import head_pose
    from edgeemo.landmarker import FaceMeshLandmarker
    from offline.data.morph import load_face, turn

    changes = []
    with FaceMeshLandmarker(static=True) as landmarker:
        for face_id in ("001", "012", "101"):
            image, points = load_face(london_dev, face_id, "neutral", depth=True)
            height, width = image.shape[:2]
            yaws = {}
            for yaw in (0.0, 20.0, -20.0):
                faces = landmarker.detect_all(cv2.cvtColor(turn(image, points, yaw), cv2.COLOR_BGR2RGB))
                assert len(faces) == 1
                yaws[yaw] = head_pose(faces[0], width, height)[0]
            changes.append((yaws[20.0] - yaws[0.0], yaws[-20.0] - yaws[0.0]))
    print("measured yaw changes for +20 / -20:", np.round(changes, 1).tolist())
    for up, down in changes:
        assert 13 <= up <= 27 and -27 <= down <= -13


@pytest.mark.offline
def test_clip_frames_follow_the_script(london_dev):
    from offline.data.morph import clip_frames, load_face, turn

    neutral, pn = load_face(london_dev, "001", "neutral", depth=True)
    smiling, ps = load_face(london_dev, "001", "smiling", depth=True)
    alphas, yaws = np.array([0.0, 0.0, 0.5, 1.0, 1.0]), np.array([0.0, 0.0, 0.0, 0.0, 10.0])
    frames = clip_frames(neutral, pn, smiling, ps, alphas, yaws)
    assert len(frames) == 5
    assert frames[0] is frames[1]  # one morph per distinct alpha
    assert np.abs(frames[0].astype(int) - neutral).mean() < 1.0
    assert np.abs(frames[3].astype(int) - smiling).mean() < 1.0
    assert np.array_equal(frames[4], turn(frames[3], ps, 10.0))
    assert np.abs(frames[4].astype(int) - frames[3]).mean() > 1.0


def test_a_clip_plays_through_serve_per_frame_path_in_video_time(london_dev):
    """The runtime's own path (StreamProcessor, MediaPipe tracking, the default bundle, a real publisher):
    with frames 1/30 s apart in video time the 1 s window fills at frame 30, then every frame is labelled."""
    from edgeemo.benchmark.real_faces import play_clip
    from edgeemo.bundle import load_bundle
    from edgeemo.info import DEFAULT_BUNDLE
    from edgeemo.metrics import Metrics
    from edgeemo.publisher import PredictionPublisher
    from edgeemo.streaming import make_classifier

    bundle = load_bundle(DEFAULT_BUNDLE)
    frame = cv2.imread(str(london_dev / "images" / "001_neutral.jpg"))
    with PredictionPublisher("tcp://127.0.0.1:*") as publisher:
        labels, calibration = play_clip([frame] * 40, bundle, make_classifier(bundle), publisher, Metrics())
    window = round(bundle.window_s * FPS)
    assert labels[:window] == [None] * window and all(label is not None for label in labels[window:])
    assert len(labels) == 40
    assert calibration is None or calibration["change_count"] >= 1  # the runtime's calibration maps, once it sends them
