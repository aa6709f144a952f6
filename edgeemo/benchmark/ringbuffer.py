"""Ring buffer cost per frame: one append plus one window read, as ``edgeemo serve`` does per frame.

    python -m edgeemo.benchmark.ringbuffer [--out bench/results]   # writes ringbuffer.{json,md}

Times every frame with time.perf_counter (after a warm-up) and reports percentiles, for the numba
buffer and, as the baseline it replaced, the same ring in plain numpy (np.take into a preallocated
window, indices computed per frame). Public tools only: time.perf_counter and numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgeemo.ringbuffer import RingBuffer

# (frames P, stride, landmarks L): the paper's 468 points, and unions of top-K selections.
CASES = ((16, 1, 468), (16, 2, 468), (16, 1, 120), (16, 1, 40), (32, 1, 120))


class NumpyRing:
    """The baseline: the same ring in numpy, [capacity, 2, L] storage, window through np.take."""

    def __init__(self, capacity: int, landmarks: int) -> None:
        self.data = np.zeros((capacity, 2, landmarks), np.float32)
        self.head = 0
        self.count = 0

    def append(self, frame: np.ndarray) -> None:
        self.data[self.head] = frame.T
        self.head = (self.head + 1) % len(self.data)
        self.count = min(self.count + 1, len(self.data))

    def window(self, stride: int, frames: int, out: np.ndarray) -> np.ndarray:
        idx = (self.head - 1 - stride * np.arange(frames - 1, -1, -1)) % len(self.data)
        return np.take(self.data, idx, axis=0, out=out)


def measure(ring, frames: int, stride: int, pool: np.ndarray, n: int, warmup: int) -> np.ndarray:
    """Seconds per frame (append + window) for n frames, after warmup frames."""
    out = np.empty((frames, 2, pool.shape[1]), np.float32)
    times = np.empty(n)
    for i in range(warmup):
        ring.append(pool[i % len(pool)])
    for i in range(n):
        frame = pool[i % len(pool)]
        t0 = time.perf_counter()
        ring.append(frame)
        ring.window(stride, frames, out)
        times[i] = time.perf_counter() - t0
    return times


def summary(times: np.ndarray) -> dict[str, float]:
    us = times * 1e6
    return {
        "mean_us": round(float(us.mean()), 3), "p50_us": round(float(np.percentile(us, 50)), 3),
        "p90_us": round(float(np.percentile(us, 90)), 3), "p99_us": round(float(np.percentile(us, 99)), 3),
        "max_us": round(float(us.max()), 3),
    }


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba

    return {
        "cpu": cpu, "cores": str(os.cpu_count()), "os": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "numba": numba.__version__,
    }


def run(n: int, warmup: int, out_dir: Path) -> dict:
    rng = np.random.default_rng(0)
    rows = []
    for frames, stride, landmarks in CASES:
        pool = rng.random((256, landmarks, 2), dtype=np.float32)
        span = (frames - 1) * stride + 1
        numba_times = measure(RingBuffer(span, landmarks), frames, stride, pool, n, warmup)
        numpy_times = measure(NumpyRing(span, landmarks), frames, stride, pool, n, warmup)
        rows.append({
            "frames": frames, "stride": stride, "landmarks": landmarks,
            "numba": summary(numba_times), "numpy": summary(numpy_times),
        })
    result = {
        "benchmark": "ring buffer append + window per frame",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m edgeemo.benchmark.ringbuffer " + " ".join(sys.argv[1:]),
        "frames_timed": n, "warmup": warmup, "machine": machine(), "results": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ringbuffer.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "ringbuffer.md").write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Ring buffer: append + window per frame",
        "",
        f"{result['date']}, `{result['command'].strip()}`: {result['frames_timed']} frames timed one by one with "
        f"`time.perf_counter` after {result['warmup']} warm-up frames.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}; "
        f"Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}.",
        "",
        "| P | stride | L | numba p50 µs | numba p99 µs | numba mean µs | numpy p50 µs | numpy p99 µs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        a, b = r["numba"], r["numpy"]
        lines.append(
            f"| {r['frames']} | {r['stride']} | {r['landmarks']} | {a['p50_us']:.2f} | {a['p99_us']:.2f} | "
            f"{a['mean_us']:.2f} | {b['p50_us']:.2f} | {b['p99_us']:.2f} |"
        )
    lines += [
        "",
        "numba: `edgeemo.ringbuffer.RingBuffer`. numpy: the same ring with `np.take(..., out=)`, the baseline.",
        "Times include the timer call itself (well under a microsecond).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--frames", type=int, default=20000, help="frames timed per case")
    parser.add_argument("--warmup", type=int, default=1000, help="frames before timing starts")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="results folder (default bench/results, from the repository root)")
    args = parser.parse_args()
    result = run(args.frames, args.warmup, args.out)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
