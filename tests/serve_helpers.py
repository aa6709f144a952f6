"""Running ``edgeemo serve`` for real in a subprocess, and clips of real faces for it to watch."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgeemo.subscriber import Subscriber


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(*args: str, metrics_port: int = 0):
    """Start ``edgeemo serve`` with a subscriber already connected; yield (process, subscriber, endpoint)."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    # Connect first: a SUB socket waits for its publisher, so no message of the run is lost.
    with Subscriber(endpoint) as sub:
        process = subprocess.Popen(
            [sys.executable, "-m", "edgeemo", "serve", "--bind", endpoint, "--metrics-port", str(metrics_port),
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        try:
            yield process, sub, endpoint
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(10)


def messages_until_shutdown(sub: Subscriber, process: subprocess.Popen, timeout_s: float = 90) -> list[dict]:
    """Every message until the status ``shutting_down`` (or fail with the server's stderr)."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = sub.receive(0.5)
        if item is None:
            if process.poll() is not None and sub.receive(1.0) is None:
                raise AssertionError(f"serve exited {process.returncode} early: {process.stderr.read()[-2000:]}")
            continue
        got.append(item[1])
        if item[1]["kind"] == "status" and item[1]["event"] == "shutting_down":
            return got
    raise AssertionError(f"no shutting_down within {timeout_s} s; got {len(got)} messages")


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    from offline.demo_clip import write_video

    write_video(path, frames, fps)
    return path
