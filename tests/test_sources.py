"""Frame sources over real files: videos written here from the London faces, folders of images, files
that vanish and come back, and the latest-frame hand-over. Assertions are on frames and counts, never
on how long anything took."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.sources import (
    Backoff,
    CaptureThread,
    ImageFolderSource,
    FrameQueue,
    ReopeningSource,
    SourceLost,
    VideoFileSource,
    make_source,
)
from tests.video_files import write_mjpg

SIZE = 96
QUICK = Backoff(initial_s=0.01, factor=2.0, max_s=0.04)


@pytest.fixture(scope="module")
def faces(london_dev) -> list[np.ndarray]:
    """Twelve different real faces, BGR 96x96."""
    paths = sorted((london_dev / "images").glob("*.jpg"))[:12]
    return [cv2.resize(cv2.imread(str(p)), (SIZE, SIZE), interpolation=cv2.INTER_AREA) for p in paths]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    return write_mjpg(path, frames, fps)


def which(frame: np.ndarray, originals: list[np.ndarray]) -> int:
    """Index of the original a decoded (JPEG-compressed) frame is closest to."""
    errors = [np.mean((frame.astype(np.float32) - o) ** 2) for o in originals]
    best = int(np.argmin(errors))
    assert errors[best] < 100, "decoded frame matches no original"
    return best


def read_all(source, originals: list[np.ndarray]) -> tuple[list[int], list[float]]:
    indices, stamps = [], []
    while (item := source.read()) is not None:
        frame, captured_at = item
        assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.uint8
        indices.append(which(frame, originals))
        stamps.append(captured_at)
    return indices, stamps


@pytest.mark.parametrize("pace", [False, True], ids=["as fast as possible", "at the file's frame rate"])
def test_video_file_gives_every_frame_in_order(tmp_path, faces, pace):
    path = write_video(tmp_path / "faces.avi", faces, fps=100.0)
    with VideoFileSource(path, pace=pace) as source:
        indices, stamps = read_all(source, faces)
        assert source.read() is None  # stays ended
    assert source.fps == pytest.approx(100.0)
    assert indices == list(range(len(faces)))
    assert stamps == sorted(stamps)


def test_video_file_decodes_into_the_frame_it_is_given(tmp_path, faces):
    with VideoFileSource(write_video(tmp_path / "faces.avi", faces), pace=False) as source:
        first, _ = source.read()
        second, _ = source.read(first)
    assert second is first and which(second, faces) == 1


def test_image_folder_in_name_order(tmp_path, faces):
    for i, face in enumerate(faces[:5]):
        cv2.imwrite(str(tmp_path / f"{4 - i:03d}.{'png' if i % 2 else 'jpg'}"), face)
    (tmp_path / "notes.txt").write_text("not an image")
    for fps in (None, 200.0):
        with ImageFolderSource(tmp_path, fps=fps) as source:
            indices, _ = read_all(source, faces)
        assert indices == [4, 3, 2, 1, 0]


@pytest.mark.parametrize(
    "spec,make,says",
    [
        ("missing.avi", lambda d: None, "--video {d}/missing.avi: no such file"),
        ("empty", lambda d: (d / "empty").mkdir(), "--video {d}/empty: no images"),
        ("text.avi", lambda d: (d / "text.avi").write_text("not a video"), "--video {d}/text.avi: cannot open"),
    ],
    ids=["missing file", "empty folder", "not a video"],
)
def test_bad_sources_name_the_flag(tmp_path, spec, make, says):
    make(tmp_path)
    source = make_source(str(tmp_path / spec), flag="--video")
    with pytest.raises(EdgeemoError, match=says.format(d=tmp_path)):
        source.open()


def test_source_kinds_and_url_passwords_kept_out_of_names(tmp_path):
    assert type(make_source("0")).__name__ == "CameraSource" and make_source("0").live
    url = make_source("rtsp://viewer:s3cret@10.0.0.5:554/stream1")
    assert url.live and url.name == "--camera rtsp://viewer:***@10.0.0.5:554/stream1"
    assert type(make_source(str(tmp_path))).__name__ == "ImageFolderSource"
    assert type(make_source(str(tmp_path / "x.mp4"))).__name__ == "VideoFileSource"


def test_backoff_grows_to_its_bound():
    assert [Backoff(0.5, 2.0, 4.0).delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert Backoff(0.5, 2.0, 4.0).delay(100_000) == 4.0  # days of retrying do not overflow
    for bad in (dict(initial_s=0), dict(factor=0.5), dict(initial_s=2.0, max_s=1.0), dict(max_attempts=0)):
        with pytest.raises(ValueError):
            Backoff(**bad)


def test_a_looping_video_starts_again_at_its_end(tmp_path, faces):
    source = VideoFileSource(write_video(tmp_path / "three.avi", faces[:3]), pace=False, loop=True)
    with source:
        got = [which(source.read()[0], faces) for _ in range(7)]
    assert got == [0, 1, 2, 0, 1, 2, 0]


def test_file_that_ends_is_not_reopened(tmp_path, faces):
    events = []
    source = ReopeningSource(VideoFileSource(write_video(tmp_path / "a.avi", faces), pace=False), backoff=QUICK,
                             on_event=lambda *e: events.append(e))
    with source:
        indices, _ = read_all(source, faces)
    assert indices == list(range(len(faces)))
    assert [e for e, _ in events] == ["end_of_stream"] and source.reopens == 0


def test_video_that_vanishes_is_reported_and_reopened_when_it_appears_again(tmp_path, faces):
    path = write_video(tmp_path / "live.avi", faces[:6])
    replacement = faces[6:11]
    events = []

    def on_event(event, detail):
        events.append((event, detail))
        if event == "camera_lost" and "reopening failed" in detail:
            write_video(path, replacement)  # the path appears again while we wait

    source = ReopeningSource(VideoFileSource(path, pace=False), backoff=QUICK, on_event=on_event)
    with source:
        first = [which(source.read()[0], faces) for _ in range(3)]
        path.unlink()  # mid-stream; what was already open stays readable to its end
        rest, _ = read_all(source, faces)
    assert first + rest == list(range(6)) + list(range(6, 11))
    assert [e for e, _ in events] == ["camera_lost", "camera_lost", "reconnected", "end_of_stream"]
    assert "deleted or changed" in events[0][1] and "no such file" in events[1][1]
    assert source.reopens == 1


def test_image_that_vanishes_is_reported_and_the_folder_goes_on(tmp_path, faces):
    for i, face in enumerate(faces[:6]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), face)
    events = []
    source = ReopeningSource(ImageFolderSource(tmp_path), backoff=QUICK, on_event=lambda *e: events.append(e))
    with source:
        first = [which(source.read()[0], faces) for _ in range(2)]
        (tmp_path / "003.png").unlink()
        rest, _ = read_all(source, faces)
    assert first + rest == [0, 1, 2, 4, 5]
    assert [e for e, _ in events] == ["camera_lost", "reconnected", "end_of_stream"]


def test_reopening_gives_up_after_max_attempts(tmp_path, faces):
    path = write_video(tmp_path / "gone.avi", faces[:3])
    events = []
    source = ReopeningSource(VideoFileSource(path, pace=False), backoff=Backoff(0.01, 2.0, 0.02, max_attempts=3),
                             on_event=lambda *e: events.append(e))
    with source:
        path.unlink()
        with pytest.raises(EdgeemoError, match="not back after 3 attempts"):
            read_all(source, faces)
    assert [e for e, _ in events] == ["camera_lost"] * 3


def test_interrupt_ends_a_wait_to_reopen(tmp_path, faces):
    path = write_video(tmp_path / "gone.avi", faces[:3])
    lost = threading.Event()
    source = ReopeningSource(VideoFileSource(path, pace=False), backoff=Backoff(initial_s=600, max_s=600),
                             on_event=lambda event, _: lost.set())
    results = []
    with source:
        path.unlink()
        reader = threading.Thread(target=lambda: results.append(read_all(source, faces)[0]))
        reader.start()
        assert lost.wait(60), "the loss was never reported"
        source.interrupt()
        reader.join(60)
    assert not reader.is_alive() and results == [[0, 1, 2]]


@pytest.fixture(scope="module")
def many_faces(london_dev) -> list[np.ndarray]:
    """48 different real faces, so a decoded frame tells its position in the video."""
    paths = sorted((london_dev / "images").glob("*.jpg"))[:48]
    return [cv2.resize(cv2.imread(str(p)), (SIZE, SIZE), interpolation=cv2.INTER_AREA) for p in paths]


def test_slow_consumer_gets_the_newest_frame_and_drops_are_counted(tmp_path, many_faces):
    n = len(many_faces)
    capture = CaptureThread(VideoFileSource(write_video(tmp_path / "long.avi", many_faces), pace=False))
    with capture:
        assert capture.join(60)  # the consumer is "busy" until the source has ended
        frame, captured_at, read_s = capture.queue.take()
        assert which(frame, many_faces) == n - 1 and read_s >= 0  # only the newest frame waited
        assert capture.queue.take() is None and capture.queue.ended
    frames = capture.queue
    assert frames.put_count == n and frames.taken == 1 and frames.dropped == n - 1


def test_a_deeper_queue_keeps_the_newest_frames_in_order(tmp_path, many_faces):
    n = len(many_faces)
    capture = CaptureThread(VideoFileSource(write_video(tmp_path / "long.avi", many_faces), pace=False),
                            FrameQueue(3))
    with capture:
        assert capture.join(60)  # the consumer is "busy" until the source has ended
        got = []
        while (item := capture.queue.take()) is not None:
            got.append(which(item[0], many_faces))
    assert got == [n - 3, n - 2, n - 1]  # the oldest were dropped, the newest three wait in order
    assert capture.queue.dropped == n - 3 and capture.queue.taken == 3


def test_frames_are_recycled_not_queued(tmp_path, many_faces):
    n = len(many_faces)
    # Paced, so the consumer takes most frames: the buffers then go round many times.
    capture = CaptureThread(VideoFileSource(write_video(tmp_path / "long.avi", many_faces, fps=200.0), pace=True))
    order, buffers = [], []
    with capture:
        while (item := capture.queue.take()) is not None:
            order.append(which(item[0], many_faces))
            buffers.append(item[0])  # kept only to count distinct arrays
    frames = capture.queue
    assert frames.taken + frames.dropped == frames.put_count == n and frames.taken == len(order)
    assert order == sorted(set(order)) and order[-1] == n - 1  # in order, and the last frame always arrives
    assert len({id(b) for b in buffers}) <= 5  # a few recycled buffers, not one per frame


def test_capture_errors_reach_the_consumer(tmp_path, faces):
    path = write_video(tmp_path / "paced.avi", faces * 4, fps=25.0)
    # Not wrapped in a ReopeningSource: losing the file is an error the consumer must see.
    with CaptureThread(VideoFileSource(path, pace=True)) as capture:
        assert capture.queue.take(timeout_s=60) is not None
        path.unlink()
        capture.join(60)
    # stopped now, and the failure is still there for the consumer
    with pytest.raises(SourceLost, match="deleted or changed"):
        while capture.queue.take() is not None:
            pass


def test_a_corrupt_image_is_skipped_and_counted_and_the_folder_goes_on(tmp_path, faces):
    for i in (0, 2):
        cv2.imwrite(str(tmp_path / f"00{i}.png"), faces[i])
    (tmp_path / "001.png").write_bytes(b"not a png")
    capture = CaptureThread(ImageFolderSource(tmp_path, fps=50.0))
    got = []
    with capture:
        while (item := capture.queue.take(timeout_s=60)) is not None:
            got.append(which(item[0], faces))
    assert got == [0, 2] and capture.queue.corrupt == 1


def test_a_camera_absent_at_start_is_waited_for_not_an_error(faces):
    # Index 99: no such device here. Opened on the capture thread with retry_open, it is reported as lost
    # (and counted) instead of failing start; stop ends the wait.
    events = []
    source = ReopeningSource(make_source("99"), backoff=QUICK, on_event=lambda *e: events.append(e))
    capture = CaptureThread(source, open_in_thread=True, retry_open=True).start()
    deadline = time.monotonic() + 30
    while source.open_failures < 3 and time.monotonic() < deadline:
        capture.queue.take(timeout_s=0.05)
    assert capture.stop(timeout_s=10)
    assert source.open_failures >= 3 and not capture.queue.take(timeout_s=0)
    assert events[0][0] == "camera_lost" and "not available at start" in events[0][1]
    assert {e for e, _ in events} == {"camera_lost"}


def test_an_absent_camera_without_retry_fails_at_once():
    with pytest.raises(EdgeemoError, match="--camera 99: cannot open"):
        ReopeningSource(make_source("99")).open()


def test_stop_mid_stream_closes_the_queue(tmp_path, faces):
    capture = CaptureThread(VideoFileSource(write_video(tmp_path / "paced.avi", faces * 4), pace=True)).start()
    assert capture.queue.take() is not None
    capture.stop()
    while capture.queue.take() is not None:
        pass
    assert capture.queue.ended and capture.join(0)


def test_frame_queue_alone():
    frames = FrameQueue()
    assert frames.take(timeout_s=0) is None and not frames.ended  # a timeout, not the end
    a, b = np.zeros(3), np.ones(3)
    frames.put(a, 1.0)
    frames.put(b, 2.0)
    assert frames.take()[1] == 2.0 and frames.dropped == 1
    assert frames.spare() is a  # the dropped frame's buffer is handed back to the producer
    frames.close(SourceLost("camera 0: no frame"))
    with pytest.raises(SourceLost):
        frames.take()


def test_a_frame_queue_hands_over_oldest_first_and_ends_after_its_last_frame():
    frames = FrameQueue(2)
    for t in (1.0, 2.0, 3.0):
        frames.put(np.full(3, t), t)
    frames.close()
    assert not frames.ended  # two frames still wait
    assert [frames.take()[1], frames.take()[1]] == [2.0, 3.0] and frames.dropped == 1
    assert frames.take() is None and frames.ended
    with pytest.raises(ValueError, match="depth"):
        FrameQueue(0)


def test_the_cli_default_network_timeout_is_the_sources():
    from edgeemo.commands.serve import DEFAULT_NETWORK_TIMEOUT_S as cli_default
    from edgeemo.sources import DEFAULT_NETWORK_TIMEOUT_S

    assert cli_default == DEFAULT_NETWORK_TIMEOUT_S  # kept apart only so that building the parser skips cv2


def test_the_cli_default_frame_queue_is_serves():
    from edgeemo.commands.serve import FRAME_QUEUE as cli_default
    from edgeemo.serve import FRAME_QUEUE

    assert cli_default == FRAME_QUEUE  # kept apart for the same reason
