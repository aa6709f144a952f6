"""``edgeemo serve`` left alone on a camera box, with real processes: sources absent at start or gone later
(a camera index with no device, HTTP cameras on 127.0.0.1 that are down, come up, go away or never
answer), signals in every state, the health endpoints, one stream's failure kept from the others, the
relay and subscriber connections watched, and a quiet start."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeemo.cli import main
from edgeemo.health import Health
from edgeemo.logs import NATIVE_LOG_LINE
from edgeemo.subscriber import Subscriber
from tests.serve_helpers import edgeemo_process, free_port, kill, messages_until_shutdown, serving, write_clip
from tests.stream_servers import MjpegCamera, SilentServer

FRAMES, STRIDE = 16, 2
SPAN = (FRAMES - 1) * STRIDE + 1  # frames before the first prediction
ABSENT_CAMERA = "57"  # a camera index with no /dev/video57: "not plugged in yet"
STOP_WITHIN_S = 2.0  # what the systemd unit and the pods are promised (docs/operations.md)
OUR_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (INFO|WARNING|ERROR) edgeemo[.\w]*: ")


@pytest.fixture(scope="module")
def bundle(linear_bundle):  # conftest's: windows of FRAMES frames
    return linear_bundle


@pytest.fixture(scope="module")
def face(london_dev):
    return cv2.imread(str(london_dev / "images" / "002_neutral.jpg"))


@pytest.fixture(autouse=True)
def no_camera_57():
    if Path(f"/dev/video{ABSENT_CAMERA}").exists():
        pytest.skip(f"this machine has a camera {ABSENT_CAMERA}")


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(check, timeout_s: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


class Statuses:
    """The status events a subscriber has seen, and the predictions per stream."""

    def __init__(self, sub: Subscriber, process: subprocess.Popen) -> None:
        self.sub, self.process = sub, process
        self.events: list[dict] = []
        self.predictions: dict[str, int] = {}

    def pump(self, seconds: float = 0.2) -> None:
        deadline = time.monotonic() + seconds
        while (item := self.sub.receive(max(0.0, deadline - time.monotonic()))) is not None:
            message = item[1]
            if message["kind"] == "status":
                self.events.append(message)
            else:
                self.predictions[message["stream"]] = self.predictions.get(message["stream"], 0) + 1

    def count(self, event: str, stream: str = "cam0", containing: str = "") -> int:
        return sum(1 for m in self.events
                   if m["event"] == event and m["stream"] == stream and containing in m["detail"])

    def wait_for(self, event: str, stream: str = "cam0", containing: str = "", times: int = 1,
                 timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.count(event, stream, containing) < times:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}: {self.process.stderr.read()[-2000:]}")
            self.pump(0.5)
        assert self.count(event, stream, containing) >= times, (
            f"{times} x {event} on {stream}: got {[(m['stream'], m['event']) for m in self.events]}")


def stop_within_limit(process: subprocess.Popen, sig: int = signal.SIGTERM) -> float:
    """Signal serve; return how long it took to exit, having checked it exited 0 within STOP_WITHIN_S."""
    signalled = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"serve still running {STOP_WITHIN_S} s after {signal.Signals(sig).name}") from None
    took = time.monotonic() - signalled
    assert code == 0, process.stderr.read()[-2000:]
    return took


# --- a source that is not there at start --------------------------------------------------------------

def test_an_absent_camera_at_start_keeps_serve_running_and_reporting(bundle):
    port = free_port()
    with serving("--camera", ABSENT_CAMERA, "--model", str(bundle), metrics_port=port) as (process, sub, _):
        seen = Statuses(sub, process)
        seen.wait_for("started")
        seen.wait_for("camera_lost", containing="not available at start")
        seen.wait_for("camera_lost", containing="next attempt in", times=3)  # it keeps trying, and says so
        assert process.poll() is None
        samples = scrape(port)
        assert samples[("edgeemo_source_open_failures_total", (("stream", "cam0"),))] >= 3
        assert samples[("edgeemo_frames_total", (("stream", "cam0"),))] == 0
        assert samples[("edgeemo_last_frame_age_seconds", (("stream", "cam0"),))] > 0
        assert probe(port, "/healthz")[0] == 200  # the loop turns: no reason to restart the process
        status, text = probe(port, "/readyz")
        assert status == 503 and "cam0: no frame yet" in text
        stop_within_limit(process)
        seen.pump(1.0)
    assert seen.count("shutting_down") == 1
    assert "camera_lost" in process.stderr.read()  # and a log line for the journal


def test_a_network_camera_down_at_start_is_used_once_up_and_readyz_follows_its_frames(bundle, face):
    camera_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{camera_port}/stream"
    with serving("--camera", url, "--model", str(bundle), "--stale-after", "2", metrics_port=port) as (process, sub, _):
        seen = Statuses(sub, process)
        seen.wait_for("camera_lost", containing="not available at start")
        status, text = probe(port, "/readyz")
        assert status == 503 and "cam0: no frame yet" in text
        with MjpegCamera([face], port=camera_port) as camera:
            seen.wait_for("reconnected")
            seen.wait_for("face_found")
            wait_until(lambda: probe(port, "/readyz")[0] == 200, what="/readyz passing once frames arrive")
            seen.pump(2.0)
            assert seen.predictions.get("cam0", 0) > 0
            camera.stop()  # the camera goes away while streaming
            seen.wait_for("camera_lost", containing="no frame")
            wait_until(lambda: probe(port, "/readyz")[0] == 503, what="/readyz failing once frames stop")
            assert "cam0: last frame" in probe(port, "/readyz")[1]
        stop_within_limit(process)


# --- signals ------------------------------------------------------------------------------------------

def _answers(port: int) -> bool:
    try:
        return probe(port, "/healthz")[0] in (200, 503)
    except OSError:
        return False


STATES = {
    # SIGTERM while the models and MediaPipe load: the metrics endpoint is up, no stream has started.
    "loading": (("--camera", "demo"), lambda port, seen: wait_until(lambda: _answers(port), what="metrics endpoint")),
    "waiting for an absent camera": (("--camera", ABSENT_CAMERA),
                                     lambda port, seen: seen.wait_for("camera_lost", containing="next attempt")),
    # FFmpeg inside OpenCV waits for a server that says nothing for the whole --network-timeout.
    "opening a camera that never answers": (("--camera", "{silent}", "--network-timeout", "60"),
                                            lambda port, seen: (seen.wait_for("started"), time.sleep(1.0))),
    "streaming": (("--camera", "demo", "--loop"), lambda port, seen: (seen.wait_for("face_found"), seen.pump(1.0))),
}


@pytest.mark.parametrize("state", list(STATES))
def test_sigterm_ends_serve_with_exit_0_within_2_s_in_every_state(bundle, state):
    args, ready = STATES[state]
    port = free_port()
    with SilentServer() as silent, serving(*(a.format(silent=silent.url) for a in args), "--model", str(bundle),
                                           metrics_port=port) as (process, sub, _):
        ready(port, Statuses(sub, process))
        stop_within_limit(process)


def test_sigterm_while_publishing_to_a_relay_that_is_down_exits_0_within_2_s(bundle):
    port = free_port()
    process = edgeemo_process("serve", "--camera", "demo", "--loop", "--model", str(bundle),
                              "--connect", f"tcp://127.0.0.1:{free_port()}", "--metrics-port", str(port))
    try:
        wait_until(lambda: _answers(port) and scrape(port).get(("edgeemo_frames_total", (("stream", "cam0"),)), 0) > 0,
                   what="frames read with no relay")
        assert scrape(port)[("edgeemo_relay_connected", ())] == 0
        stop_within_limit(process)
    finally:
        kill(process)
    assert "relay_lost: no relay at" in process.stderr.read()


def test_sigint_twice_exits_at_once(bundle):
    with SilentServer() as silent, serving("--camera", silent.url, "--network-timeout", "60",
                                           "--model", str(bundle)) as (process, sub, _):
        Statuses(sub, process).wait_for("started")
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        assert process.wait(STOP_WITHIN_S) in (0, 128 + signal.SIGINT)  # 0 only if the first already finished
        assert "second SIGINT" in process.stderr.read() or process.returncode == 0


# --- isolation ----------------------------------------------------------------------------------------

def test_one_streams_lost_camera_and_corrupt_frame_stay_its_own(bundle, face, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(40):
        cv2.imwrite(str(folder / f"{i:03d}.png"), face)
    (folder / "020.png").write_bytes(b"\x89PNG but not really")  # replaces one face: a damaged file
    clip = write_clip(tmp_path / "face.mp4", [face] * 40)
    port = free_port()
    # --fast: the folder and the clip are read on the loop's thread, every frame processed (the camera, being
    # live, still on its own thread), so the predictions can be counted exactly.
    with serving("--camera", ABSENT_CAMERA, "--camera", str(folder), "--camera", str(clip), "--fast",
                 "--model", str(bundle), metrics_port=port) as (process, sub, _):
        seen = Statuses(sub, process)
        seen.wait_for("end_of_stream", stream="cam1")
        seen.wait_for("end_of_stream", stream="cam2")
        seen.pump(1.0)
        assert process.poll() is None  # cam0 still waits for its camera
        samples = scrape(port)
        status, text = probe(port, "/readyz")
        stop_within_limit(process)
    assert seen.predictions["cam1"] == 39 - SPAN + 1  # every readable image, the damaged one skipped
    assert seen.predictions["cam2"] == 40 - SPAN + 1
    assert samples[("edgeemo_frames_corrupt_total", (("stream", "cam1"),))] == 1
    assert samples[("edgeemo_frames_corrupt_total", (("stream", "cam2"),))] == 0
    assert samples[("edgeemo_stream_errors_total", (("stream", "cam1"),))] == 0
    assert status == 503 and "cam0: no frame yet" in text and "cam1: ended" in text and "cam2: ended" in text


# --- device, relay and subscriber connections ---------------------------------------------------------

def test_device_cuda_without_a_working_cuda_provider_is_a_one_line_usage_error(bundle, capsys):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine's ONNX Runtime has a CUDA provider")
    code = main(["serve", "--device", "cuda", "--model", str(bundle), "--camera", "demo",
                 "--bind", f"tcp://127.0.0.1:{free_port()}", "--metrics-port", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("edgeemo: error: --device cuda:") and "--device cpu" in err


@pytest.fixture(scope="module")
def keys(curve_keys):
    return curve_keys


@pytest.fixture(scope="module")
def wrong_client_keys(tmp_path_factory, keys):
    """The right relay's public key, but a client key pair it does not know."""
    stranger = tmp_path_factory.mktemp("stranger") / "edgeemo"
    assert main(["keys", "--out", str(stranger)]) == 0
    folder = tmp_path_factory.mktemp("wrong") / "edgeemo"
    folder.mkdir()
    shutil.copy2(keys / "server.key", folder / "server.key")
    for name in ("client.key", "client.key_secret"):
        shutil.copy2(stranger / name, folder / name)
    return folder


def _relay(publishers: str, subscribers: str, *args: str) -> subprocess.Popen:
    process = edgeemo_process("relay", "--publishers", publishers, "--subscribers", subscribers, *args)
    line = process.stderr.readline()
    assert line.startswith("edgeemo relay:"), line + process.stderr.read()[-2000:]
    return process


def test_serve_connect_reports_a_relay_that_is_down_then_up(bundle):
    publishers, subscribers = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    port = free_port()
    process = edgeemo_process("serve", "--camera", "demo", "--loop", "--model", str(bundle),
                              "--connect", publishers, "--metrics-port", str(port))
    relay = None
    try:
        wait_until(lambda: _answers(port) and scrape(port).get(("edgeemo_frames_total", (("stream", "cam0"),)), 0) > 0,
                   what="serve reading frames")
        assert scrape(port)[("edgeemo_relay_connected", ())] == 0
        relay = _relay(publishers, subscribers)
        with Subscriber(subscribers) as sub:
            seen = Statuses(sub, process)
            wait_until(lambda: scrape(port)[("edgeemo_relay_connected", ())] == 1, what="relay_connected metric")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not seen.predictions:
                seen.pump(0.5)
            assert seen.predictions, "nothing through the relay once it was up"
        stop_within_limit(process)
    finally:
        kill(process)
        if relay is not None:
            kill(relay)
    err = process.stderr.read()
    assert "relay_lost: no relay at" in err and "relay_connected: relay at" in err
    assert err.index("relay_lost") < err.index("relay_connected")


def test_serve_connect_reports_a_failed_handshake_with_the_relay(bundle, keys, wrong_client_keys):
    publishers, subscribers = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    port = free_port()
    relay = _relay(publishers, subscribers, "--curve-keys", str(keys))
    process = edgeemo_process("serve", "--camera", "demo", "--loop", "--model", str(bundle), "--connect", publishers,
                              "--curve-keys", str(wrong_client_keys), "--metrics-port", str(port))
    try:
        wait_until(lambda: _answers(port) and scrape(port)[("edgeemo_relay_handshake_failures_total", ())] >= 1,
                   what="a handshake failure counted")
        assert scrape(port)[("edgeemo_relay_connected", ())] == 0
        stop_within_limit(process)
    finally:
        kill(process)
        kill(relay)
    assert "relay_handshake_failed: the handshake with the relay" in process.stderr.read()


def test_subscribe_says_when_nothing_answers_or_the_handshake_fails(keys, wrong_client_keys):
    from edgeemo.keys import load_server_keys
    from edgeemo.publisher import PredictionPublisher

    nobody = subprocess.run(_edgeemo("subscribe", f"tcp://127.0.0.1:{free_port()}", "--timeout", "2"),
                            capture_output=True, text=True, timeout=60)
    assert nobody.returncode == 2
    assert "edgeemo subscribe: no peer: no publisher at" in nobody.stderr
    assert nobody.stderr.strip().endswith("nothing answers there")
    with PredictionPublisher(f"tcp://127.0.0.1:{free_port()}", curve=load_server_keys(keys)) as publisher:
        refused = subprocess.run(_edgeemo("subscribe", publisher.endpoint, "--curve-keys", str(wrong_client_keys),
                                          "--timeout", "3"), capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "edgeemo subscribe: handshake failed:" in refused.stderr
    assert "do --curve-keys match" in refused.stderr


def _edgeemo(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "edgeemo", *args]


# --- a quiet start ------------------------------------------------------------------------------------

@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_start_shows_only_edgeemos_lines_unless_verbose(bundle, face, tmp_path, verbose):
    clip = write_clip(tmp_path / "face.mp4", [face] * 40)
    extra = ("--verbose",) if verbose else ()
    with serving("--camera", str(clip), "--fast", "--model", str(bundle), *extra) as (process, sub, _):
        messages_until_shutdown(sub, process)
        assert process.wait(30) == 0
        lines = [line for line in process.stderr.read().splitlines() if line.strip()]
    ours = [line for line in lines if OUR_LOG_LINE.match(line)]
    assert any("cam0: started" in line for line in ours)
    if verbose:
        assert any(NATIVE_LOG_LINE.match(line.encode()) for line in lines), "no library line with --verbose"
    else:
        assert lines == ours, f"not edgeemo's: {[line for line in lines if line not in ours][:5]}"


# --- health, by itself --------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_liveness_follows_the_loop_and_readiness_every_streams_frames():
    clock = Clock()
    health = Health(["a", "b"], stale_s=5, stall_s=10, start_grace_s=60, clock=clock)
    assert health.liveness()[0] and health.liveness()[1].startswith("starting")
    assert health.readiness() == (False, "a: no frame yet (0.0 s)\nb: no frame yet (0.0 s)")
    clock.now += 61
    assert not health.liveness()[0]  # never started
    health.beat()
    health.frame("a")
    assert health.liveness() == (True, "ok") and not health.readiness()[0]
    health.frame("b")
    assert health.readiness()[0] and health.frame_age("b") == 0
    clock.now += 6
    health.beat()
    ready, text = health.readiness()
    assert not ready and "a: last frame 6.0 s ago (limit 5 s)" in text
    health.frame("a")
    health.ended("b")  # a file that played to its end does not make the process unready
    assert health.readiness()[0]
    health.ended("a", "SourceLost: gone")
    assert health.readiness() == (False, "a: failed: SourceLost: gone\nb: ended")
    clock.now += 11
    assert not health.liveness()[0] and "stuck" in health.liveness()[1]
    health.stopping()
    assert health.readiness() == (False, "shutting down")


def test_health_liveness_fails_when_one_streams_thread_is_stuck_not_when_it_ended():
    clock = Clock()
    health = Health(["a", "b"], stale_s=5, stall_s=10, clock=clock)
    health.beat(), health.beat("a"), health.beat("b")
    clock.now += 8
    health.beat(), health.beat("a")  # b's thread is inside one call (a face mesh that never returns, say)
    assert health.liveness() == (True, "ok")
    clock.now += 3
    health.beat(), health.beat("a")
    alive, text = health.liveness()
    assert not alive and text == "b: its processing thread is stuck: last turn 11.0 s ago (limit 10 s)"
    health.ended("b")  # a stream whose source ended has no thread to turn
    assert health.liveness() == (True, "ok")


def test_dropped_frames_are_logged_with_what_to_do_then_at_most_once_a_minute(tmp_path, face, monkeypatch):
    """A stream slower than its camera: its frame queue drops frames (counted), and the journal says so once,
    with the remedy, then at most every ERROR_LOG_EVERY_S with the count since (not a line per frame)."""
    import logging

    from prometheus_client import CollectorRegistry

    from edgeemo import serve
    from edgeemo.metrics import Metrics
    from edgeemo.sources import ReopeningSource, VideoFileSource
    from tests.video_files import write_mjpg

    clip = write_mjpg(tmp_path / "clip.avi", [face] * 30, fps=30.0)
    registry = CollectorRegistry()
    feed = serve._Feed("cam0", ReopeningSource(VideoFileSource(clip, pace=False)), True,
                       Metrics(registry).stream("cam0"), frame_queue=1)
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("edgeemo.serve")
    logger.addHandler(handler)
    try:
        feed.open()
        assert feed.capture.join(60)  # nobody takes a frame: all but the newest are dropped
        feed.count()
        feed.count()
        assert len(lines) == 1 and lines[0].startswith("cam0: 29 frames dropped (29 in all): "), lines
        assert "--process-every 2" in lines[0] and "--stream-cpus 0" in lines[0] and "one process per core" in lines[0]
        feed.capture.queue.dropped += 5  # more within the minute: counted, not logged
        feed.count()
        assert len(lines) == 1
        assert registry.get_sample_value("edgeemo_frames_dropped_total", {"stream": "cam0"}) == 34
        real = time.monotonic
        monkeypatch.setattr(time, "monotonic", lambda: real() + serve.ERROR_LOG_EVERY_S)
        feed.capture.queue.dropped += 2
        feed.count()
        assert lines[1].startswith("cam0: 7 frames dropped since the last report (36 in all)"), lines
    finally:
        logger.removeHandler(handler)
        feed.close(1.0)
