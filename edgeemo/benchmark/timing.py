"""Timing calls as tensorflow-onnx's benchmark does, summarising the times, and describing the machine."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from edgeemo import __version__


@dataclass(frozen=True)
class Timings:
    """Seconds per call: ``wall`` by ``time.perf_counter``, what a caller waits; ``cpu`` by
    ``time.process_time``, the CPU this process (all its threads) spent, which other processes competing
    for the cores do not inflate."""

    wall: np.ndarray
    cpu: np.ndarray

    def summary(self) -> dict[str, float]:
        return {**summary_ms(self.wall), "cpu_median_ms": round(float(np.median(self.cpu)) * 1000, 4)}


def measure(call: Callable[[], object], budget_s: float, *, warmup: int = 10, min_calls: int = 20) -> Timings:
    """``warmup`` untimed calls, then every call timed until ``budget_s`` has passed and at least
    ``min_calls`` were made. Every time is kept, for percentiles."""
    for _ in range(warmup):
        call()
    wall: list[float] = []
    cpu: list[float] = []
    started = time.perf_counter()
    while len(wall) < min_calls or time.perf_counter() - started < budget_s:
        c0, t0 = time.process_time(), time.perf_counter()
        call()
        t1, c1 = time.perf_counter(), time.process_time()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
    return Timings(np.asarray(wall), np.asarray(cpu))


def summary_ms(seconds: np.ndarray) -> dict[str, float]:
    """Milliseconds: median, 99th percentile, mean, min, max, and the number of samples."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    return {
        "n": int(ms.size), "median_ms": round(float(np.median(ms)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4), "mean_ms": round(float(ms.mean()), 4),
        "min_ms": round(float(ms.min()), 4), "max_ms": round(float(ms.max()), 4),
    }


@contextmanager
def one_core() -> Iterator[int | None]:
    """Run the calling thread on one CPU (threads it starts meanwhile inherit that); yields the CPU, or
    None where the system cannot pin. The previous CPU set is restored afterwards."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    previous = os.sched_getaffinity(0)
    cpu = min(previous)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, previous)


def machine() -> dict[str, object]:
    """CPU model, cores, memory, OS, Python and the versions that matter; load average now (others' work
    on the machine changes every number)."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "mediapipe": _version("mediapipe"),
        "numpy": _version("numpy"),
        "edgeemo": __version__,
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (runnable processes), or None where the system has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
