"""Running ``edgeemo serve`` and ``edgeemo relay`` for real in subprocesses, and clips of real faces for them."""

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

from edgeemo.keys import load_client_keys
from edgeemo.subscriber import Subscriber


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def edgeemo_process(*args: str) -> subprocess.Popen:
    """``python -m edgeemo ARGS`` with its output piped (text); a crash (SIGSEGV, SIGBUS) leaves the Python
    stack of every thread on stderr, which the failing test shows."""
    return subprocess.Popen(
        [sys.executable, "-m", "edgeemo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1"),
    )


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)


@contextmanager
def serving(*args: str, metrics_port: int = 0, curve_keys: Path | None = None):
    """Start ``edgeemo serve`` with a subscriber already connected; yield (process, subscriber, endpoint).
    With ``curve_keys``, serve encrypts and the subscriber holds the client keys."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    curve = load_client_keys(curve_keys) if curve_keys is not None else None
    curve_args = ("--curve-keys", str(curve_keys)) if curve_keys is not None else ()
    # Connect first: a SUB socket waits for its publisher, so no message of the run is lost.
    with Subscriber(endpoint, curve=curve) as sub:
        process = edgeemo_process("serve", "--bind", endpoint, "--metrics-port", str(metrics_port), *curve_args, *args)
        try:
            yield process, sub, endpoint
        finally:
            kill(process)


@contextmanager
def relaying(*args: str):
    """Start ``edgeemo relay`` on free loopback ports; once it has bound both, yield
    (process, publishers endpoint, subscribers endpoint)."""
    publishers, subscribers = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    process = edgeemo_process("relay", "--publishers", publishers, "--subscribers", subscribers, *args)
    try:
        line = process.stderr.readline()  # its first line says where it listens: written after binding
        if not line.startswith("edgeemo relay:"):
            raise AssertionError(f"relay did not start: {line}{process.stderr.read()[-2000:]}")
        yield process, publishers, subscribers
    finally:
        kill(process)


def messages_until_shutdown(sub: Subscriber, *processes: subprocess.Popen, streams: int = 1,
                            timeout_s: float = 90) -> list[dict]:
    """Every message until ``streams`` streams have sent the status ``shutting_down`` (or fail with the
    stderr of a server that exited first)."""
    got: list[dict] = []
    finished: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = sub.receive(0.5)
        if item is None:
            exited = [p for p in processes if p.poll() is not None]
            failed = [p for p in exited if p.returncode != 0] or (exited if len(exited) == len(processes) else [])
            if not failed:
                continue
            item = sub.receive(1.0)  # what it sent last may still be on its way
            if item is None:
                raise AssertionError(f"serve exited {failed[0].returncode} early: {failed[0].stderr.read()[-2000:]}")
        got.append(item[1])
        if item[1]["kind"] == "status" and item[1]["event"] == "shutting_down":
            finished.add(item[1]["stream"])
            if len(finished) == streams:
                return got
    raise AssertionError(
        f"{len(finished)} of {streams} streams shut down within {timeout_s} s; got {len(got)} messages"
    )


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    from offline.data.morph import write_video

    write_video(path, frames, fps)
    return path
