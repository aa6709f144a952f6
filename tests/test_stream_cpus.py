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

ALL = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
pytestmark = pytest.mark.skipif(len(ALL) < 2, reason="pinning needs Linux and two CPUs to tell apart")
ONE = max(ALL, default=0)


def threads_of(pid: int) -> dict[str, tuple[str, frozenset[int]]]:
    """Each thread of a process (by its id): its name and the CPUs it may run on. Threads come and go while
    this reads (FFmpeg's decoders, each time a looping file starts again): one that ends meanwhile is left out."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            line = next(s for s in (task / "status").read_text().splitlines() if s.startswith("Cpus_allowed_list:"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        cpus: set[int] = set()
        for part in line.split(":", 1)[1].strip().split(","):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
        out[task.name] = (name, frozenset(cpus))
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
            seen["faces"] = len(faces)
            seen["threads"] = {tid: cpus for tid, (_, cpus) in threads_of(os.getpid()).items()}
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
        # Both streams publishing: their threads run (start-up has threads of its own that come and go).
        predicted: set[str] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(predicted) < 2:
            assert process.poll() is None, process.stderr.read()[-2000:]
            item = sub.receive(0.5)
            if item is not None and item[1]["kind"] == "prediction":
                predicted.add(item[1]["stream"])
        assert len(predicted) == 2
        threads = threads_of(process.pid)
    assert len([cpus for _, cpus in threads.values() if cpus != ALL]) >= 2
    assert all(cpus in (ALL, {ONE}) for _, cpus in threads.values()), threads
    mediapipe = [cpus for name, cpus in threads.values() if name.startswith("mediapipe/")]
    assert mediapipe and all(cpus == ALL for cpus in mediapipe), threads


@pytest.mark.parametrize("value", ["a", "1-0", "0,,1", str(ONE + 1)])
def test_a_cpu_list_serve_cannot_use_is_a_one_line_error_naming_the_flag(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--camera", "demo", "--stream-cpus", value])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and "--stream-cpus" in err
