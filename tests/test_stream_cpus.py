"""serve --stream-cpus: each stream's own thread on the CPUs named, MediaPipe's graph threads on every CPU."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgeemo.cli import main
from tests.serve_helpers import serving

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs to tell apart")
ALL = frozenset(os.sched_getaffinity(0))
ONE = max(ALL)


def affinities(pid: int) -> dict[str, frozenset[int]]:
    """Each thread of a process (by its id): the CPUs it may run on."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            line = next(s for s in (task / "status").read_text().splitlines() if s.startswith("Cpus_allowed_list:"))
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        cpus: set[int] = set()
        for part in line.split(":", 1)[1].strip().split(","):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
        out[task.name] = frozenset(cpus)
    return out


def test_a_pinned_stream_thread_leaves_mediapipes_threads_on_every_cpu(london_dev):
    """The landmarker's graph threads start with it, before any stream thread pins itself; a reset (a new
    video, the multi-face switch) on the pinned thread starts no new ones that would inherit its CPU."""
    import cv2

    from edgeemo.landmarker import FaceMeshLandmarker
    from edgeemo.serve import pin_stream_thread

    rgb = cv2.cvtColor(cv2.imread(str(london_dev / "images" / "001_neutral.jpg")), cv2.COLOR_BGR2RGB)
    with FaceMeshLandmarker(static=False) as landmarker:
        seen = {}

        def stream() -> None:
            pin_stream_thread(frozenset({ONE}))
            faces = landmarker.detect_all(rgb)
            landmarker.reset()
            faces += landmarker.detect_all(rgb)
            seen["faces"], seen["threads"] = len(faces), affinities(os.getpid())
            seen["me"] = str(threading.get_native_id())

        worker = threading.Thread(target=stream)
        worker.start()
        worker.join(60)
    assert seen["faces"] == 2
    threads = seen["threads"]
    assert threads[seen["me"]] == {ONE}
    assert all(cpus == ALL for tid, cpus in threads.items() if tid != seen["me"]), threads
    assert len(threads) > 2  # MediaPipe's graph threads were there to look at, beside this one and the main one


def test_serve_runs_each_stream_thread_on_the_cpus_named_and_mediapipes_on_every_cpu():
    """Pinned: the two stream threads, and the threads they start (OpenCV's worker pool, made at a stream's
    first colour conversion); MediaPipe's graph threads (named mediapipe/ID) are not."""
    with serving("--camera", "demo", "--camera", "demo", "--loop", "--stream-cpus", str(ONE)) as (process, sub, _):
        pinned: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(pinned) < 2:
            assert process.poll() is None, process.stderr.read()[-2000:]
            pinned = [tid for tid, cpus in affinities(process.pid).items() if cpus != ALL]
            time.sleep(0.2)
        time.sleep(1.0)  # the streams run
        threads = affinities(process.pid)
        names = {tid: (Path(f"/proc/{process.pid}/task/{tid}/comm").read_text().strip()
                       if Path(f"/proc/{process.pid}/task/{tid}").exists() else "") for tid in threads}
    assert len([cpus for cpus in threads.values() if cpus != ALL]) >= 2
    assert all(cpus in (ALL, {ONE}) for cpus in threads.values()), threads
    mediapipe = [tid for tid, name in names.items() if name.startswith("mediapipe/")]
    assert mediapipe and all(threads[tid] == ALL for tid in mediapipe), (names, threads)


@pytest.mark.parametrize("value", ["a", "1-0", "0,,1", str(max(ALL) + 1)])
def test_a_cpu_list_serve_cannot_use_is_a_one_line_error_naming_the_flag(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--camera", "demo", "--stream-cpus", value])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and "--stream-cpus" in err
