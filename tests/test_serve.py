"""``edgeemo serve`` end to end, in a real process: real faces, MediaPipe, ONNX Runtime, ZeroMQ, HTTP."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeemo.cli import main
from edgeemo.emotions import EMOTIONS
from offline.data.morph import load_face, smile_clip
from tests.serve_helpers import free_port, messages_until_shutdown, serving, write_clip

FRAMES, STRIDE = 16, 2
SPAN = (FRAMES - 1) * STRIDE + 1  # frames before the first prediction


@pytest.fixture(scope="module")
def bundle(linear_bundle):  # conftest's: windows of FRAMES frames
    return linear_bundle


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, london_dev):
    neutral, pn = load_face(london_dev, "002", "neutral")
    smiling, ps = load_face(london_dev, "002", "smiling")
    frames = smile_clip(neutral, pn, smiling, ps, hold_neutral=10, onset=10, hold_smile=30)
    return write_clip(tmp_path_factory.mktemp("clip") / "smile.mp4", frames), len(frames)


def test_a_video_gives_one_prediction_per_frame_after_the_window_fills_in_order(bundle, face_clip):
    clip, n_frames = face_clip
    with serving("--camera", str(clip), "--model", str(bundle), "--fast", "--stream", "lab1") as (process, sub, _):
        got = messages_until_shutdown(sub, process)
        assert process.wait(30) == 0
        assert "lab1: started: " in (log := process.stderr.read()) and "six per-emotion models" in log  # no pair
    predictions = [m for m in got if m["kind"] == "prediction"]
    events = [m["event"] for m in got if m["kind"] == "status"]
    assert events == ["started", "face_found", "end_of_stream", "shutting_down"]
    assert len(predictions) == n_frames - SPAN + 1
    assert [m["seq"] for m in predictions] == list(range(len(predictions)))
    first = predictions[0]
    assert first["stream"] == "lab1" and first["face_found"] and first["bundle"] == "test-linear"
    assert list(first["scores"]) == list(EMOTIONS)
    assert first["label"] in (*EMOTIONS, "neutral")
    assert first["latency"]["total"] >= first["latency"]["landmarks"] > 0
    assert first["k"] == {e: 3 + i % 3 for i, e in enumerate(EMOTIONS)}


def test_metrics_are_served_while_running_and_sigterm_ends_cleanly(bundle):
    port = free_port()
    with serving("--camera", "demo", "--model", str(bundle), metrics_port=port) as (process, sub, _):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            item = sub.receive(1.0)
            # seq 4 is published after prediction 3's latency was observed: then the count below is >= 4
            if item and item[1]["kind"] == "prediction" and item[1]["seq"] >= 4:
                break
        else:
            pytest.fail("no prediction from the demo clip")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        process.send_signal(signal.SIGTERM)
        got = messages_until_shutdown(sub, process)
        assert process.wait(30) == 0
    assert got[-1]["event"] == "shutting_down" and got[-1]["detail"] == "signal"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("edgeemo_frames_total", (("stream", "cam0"),))] >= SPAN
    buckets = [k for k in samples if k[0] == "edgeemo_stage_latency_seconds_bucket" and ("stage", "landmarks") in k[1]]
    assert len(buckets) > 5
    assert samples[("edgeemo_end_to_end_latency_seconds_count", (("stream", "cam0"),))] >= 4


def test_a_video_with_no_face_gives_status_and_no_prediction(bundle, tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(40)]
    clip = write_clip(tmp_path / "noface.mp4", frames)
    with serving("--camera", str(clip), "--model", str(bundle), "--fast") as (process, sub, _):
        got = messages_until_shutdown(sub, process)
        assert process.wait(30) == 0
    assert [m["kind"] for m in got].count("prediction") == 0
    assert [m["event"] for m in got] == ["started", "no_face", "end_of_stream", "shutting_down"]


def test_with_fast_a_face_gap_is_measured_in_video_time(bundle, london_dev, tmp_path):
    # 40 frames of a face, 1 s of video without one (longer than --face-gap 0.5), the face again: decoded
    # in a fraction of a second with --fast, yet the window must empty as it would live.
    face, _ = load_face(london_dev, "002", "neutral")
    blank = np.full_like(face, 127)
    clip = write_clip(tmp_path / "gap.mp4", [face] * 40 + [blank] * 30 + [face] * 40)
    with serving("--camera", str(clip), "--model", str(bundle), "--fast") as (process, sub, _):
        got = messages_until_shutdown(sub, process)
        assert process.wait(30) == 0
    events = [m["event"] for m in got if m["kind"] == "status"]
    assert events == ["started", "face_found", "no_face", "face_found", "end_of_stream", "shutting_down"]
    predictions = [m for m in got if m["kind"] == "prediction"]
    assert len(predictions) == 2 * (40 - SPAN + 1)  # none in the gap: the window fills again after it


def test_a_source_that_vanishes_is_reported_and_reopened_when_it_is_back(bundle, face_clip, tmp_path):
    clip = tmp_path / "live.mp4"
    clip.write_bytes(face_clip[0].read_bytes())
    events = []

    def wait_for(event):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and event not in events:
            item = sub.receive(1.0)
            if item and item[1]["kind"] == "status":
                events.append(item[1]["event"])
        assert event in events, f"no {event} status; got {events}"

    with serving("--camera", str(clip), "--model", str(bundle)) as (process, sub, _):
        wait_for("face_found")
        clip.unlink()
        wait_for("camera_lost")
        assert process.poll() is None  # still running, waiting for the source to come back
        clip.write_bytes(face_clip[0].read_bytes())
        wait_for("reconnected")
        process.send_signal(signal.SIGINT)
        got = messages_until_shutdown(sub, process)
        assert process.wait(30) == 0
    assert got[-1]["event"] == "shutting_down"


def test_two_sources_in_one_process_give_two_complete_streams(bundle, face_clip):
    clip, n_frames = face_clip
    with serving("--camera", str(clip), "--camera", "demo", "--fast", "--model", str(bundle)) as (process, sub, _):
        got = messages_until_shutdown(sub, process, streams=2)
        assert process.wait(30) == 0
    for stream, frames in (("cam0", n_frames), ("cam1", 150)):  # ids derived; the demo clip has 150 frames
        seqs = [m["seq"] for m in got if m["kind"] == "prediction" and m["stream"] == stream]
        assert seqs == list(range(frames - SPAN + 1)), stream
        events = [m["event"] for m in got if m["kind"] == "status" and m["stream"] == stream]
        assert events == ["started", "face_found", "end_of_stream", "shutting_down"], stream


@pytest.mark.parametrize("argv, error", [
    (["--camera", "0", "--camera", "1", "--stream", "a"],
     "--stream: 1 given for 2 --camera sources (give one per --camera, or none for cam0, cam1, ...)"),
    (["--camera", "0", "--camera", "1", "--stream", "a", "--stream", "a"], "--stream: 'a' given twice"),
], ids=["count", "twice"])
def test_stream_ids_must_match_the_sources(argv, error, capsys):
    assert main(["serve", *argv]) == 2
    assert capsys.readouterr().err == f"edgeemo: error: {error}\n"


def test_show_without_a_display_is_a_one_line_error_not_an_abort(bundle):
    # Without this check OpenCV's Qt kills the process (SIGABRT) at the first frame, with Qt's own messages.
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "edgeemo", "serve", "--camera", "demo", "--show", "--model",
                           str(bundle), "--bind", f"tcp://127.0.0.1:{free_port()}", "--metrics-port", "0"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith("edgeemo: error: --show: no display to open a window on")


def test_the_show_overlay_draws_each_face_its_landmarks_box_and_score_bars(bundle, london_dev):
    from edgeemo.bundle import load_bundle
    from edgeemo.classifier import EmotionClassifier
    from edgeemo.metrics import Metrics
    from edgeemo.multi_face import PROBE_EVERY, MultiFaceLandmarker
    from edgeemo.publisher import PredictionPublisher
    from edgeemo.serve import (BOX_COLOUR, LANDMARK_COLOUR, SCORE_BAR_PX, SCORE_BAR_X, SCORE_COLOUR, SCORE_PANEL,
                               StreamProcessor, draw_overlay, score_panel)

    two = np.hstack([load_face(london_dev, "002", "neutral")[0], load_face(london_dev, "001", "neutral")[0]])
    loaded = load_bundle(bundle)
    with PredictionPublisher(f"tcp://127.0.0.1:{free_port()}") as publisher, MultiFaceLandmarker(2) as landmarker:
        processor = StreamProcessor("show", loaded, EmotionClassifier(loaded), landmarker, publisher,
                                    Metrics().stream("show"))
        assert (draw_overlay(two, processor) == two).all()  # nothing seen yet, nothing drawn
        for _ in range(PROBE_EVERY + SPAN):  # the second face is noticed within a probe's period, then fills its window
            processor.process(two, 0.0, 0.0)
    view = draw_overlay(two, processor)
    assert sorted(processor.last_faces) == [0, 1]
    assert not (view == two).all() and (view == two).all(axis=2).mean() > 0.9  # drawn over, the frame kept
    for face in processor.last_faces:
        track = processor.tracks[face]
        x0, y0, x1, y1 = map(int, track.last_box)
        assert tuple(view[(y0 + y1) // 2, x0]) == BOX_COLOUR and tuple(view[y1, (x0 + x1) // 2]) == BOX_COLOUR
        px, py = score_panel(track.last_box, view.shape)
        for x, y in track.last_points[loaded.landmarks_union].astype(int):
            if not (px <= x < px + SCORE_PANEL[0] and py <= y < py + SCORE_PANEL[1]):
                assert tuple(view[y, x]) in (LANDMARK_COLOUR, BOX_COLOUR)
        for i, score in enumerate(track.last_scores):
            row = view[py + 14 + 16 * i - 5, px + SCORE_BAR_X:px + SCORE_BAR_X + SCORE_BAR_PX + 2]
            drawn = (row == SCORE_COLOUR).all(axis=1)
            assert drawn.sum() == int(SCORE_BAR_PX * score) + 1 and drawn[:drawn.sum()].all()


def test_process_every_2_halves_the_frames_processed_and_the_timed_window_still_spans_its_second():
    # The demo clip (150 frames at 30 fps, a real face) through a bundle with a streaming pair: windows of 16
    # frames 1/15 s apart. Every frame: the first window is full after 1 s of video (frame 31), 120 predictions.
    # Every 2nd frame: 75 frames processed, each exactly on the window's step, so the window is full at the 16th
    # and 60 predictions follow, none refused for timing.
    from edgeemo.info import ABSOLUTE_BUNDLE

    counts = {}
    for every in ("1", "2"):
        with serving("--camera", "demo", "--model", str(ABSOLUTE_BUNDLE), "--fast", "--process-every", every) as (
                process, sub, _):
            got = messages_until_shutdown(sub, process)
            assert process.wait(60) == 0
            # Serve's log says what classifies: the pair, and for each half its compiled kernel or ONNX Runtime.
            assert re.search(r"started: .*, streaming pair \(frames encoded by (compiled|onnxruntime), windows "
                             r"classified by (compiled|onnxruntime)\)", process.stderr.read())
        counts[every] = [m["seq"] for m in got if m["kind"] == "prediction"]
    assert counts["1"] == list(range(120))
    assert counts["2"] == list(range(60))


def test_process_every_needs_a_timed_window(bundle, capsys):  # conftest's linear bundle has no streaming pair
    assert main(["serve", "--camera", "demo", "--model", str(bundle), "--process-every", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgeemo: error: --process-every 2: ") and "no streaming pair" in err[0]
