"""Two cameras on one small machine: both streams in one ``edgeemo serve`` process, or one process each?

    python -m edgeemo.benchmark.multisource [--out bench/results]   # writes multisource.{json,md,png}

Runs real ``edgeemo serve`` processes on a real face video (the demo clip played forward and back to
``--frames`` frames), two streams each time:

- ``one process``:   serve --camera CLIP --camera CLIP --stream a --stream b
- ``two processes``: serve --camera CLIP --stream a  and  serve --camera CLIP --stream b

first unpaced (``--fast``: every frame processed as fast as the machine allows, which measures capacity),
then paced at the clip's 30 frames/s (as cameras deliver, which measures latency and dropped frames). A
subscriber records every message; per stream it reports predictions per second and the ``latency.total``
percentiles over the interval when both streams were running, and the CPU time and memory of the
serve processes. Needs the offline extra only when no default model bundle is installed (to export one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import zmq

from edgeemo.benchmark.classifier import build_bundle
from edgeemo.benchmark.report import machine_line
from edgeemo.benchmark.timing import load_average, machine, now, summary_ms
from edgeemo.bundle import MANIFEST, load_bundle
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.io import atomic_write_json, atomic_write_text
from edgeemo.messages import unpack
from edgeemo.serve import DEMO_CLIP

STREAMS = ("a", "b")
LAYOUTS = ("one process", "two processes")


def long_clip(path: Path, frames: int) -> float:
    """Write the demo clip played forward and back until ``frames`` frames (a face smiling and relaxing);
    return its frame rate."""
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    clip = []
    while (item := capture.read())[0]:
        clip.append(item[1])
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    cycle = clip + clip[::-1]
    height, width = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(frames):
        writer.write(cycle[i % len(cycle)])
    writer.release()
    return fps


def commands(layout: str, clip: Path, bundle: Path, paced: bool, ports: list[int]) -> list[list[str]]:
    base = [sys.executable, "-m", "edgeemo", "serve", "--model", str(bundle), "--metrics-port", "0"]
    base += [] if paced else ["--fast"]
    if layout == "one process":
        return [base + ["--bind", f"tcp://127.0.0.1:{ports[0]}", "--camera", str(clip), "--camera", str(clip),
                        "--stream", STREAMS[0], "--stream", STREAMS[1]]]
    return [base + ["--bind", f"tcp://127.0.0.1:{port}", "--camera", str(clip), "--stream", stream]
            for port, stream in zip(ports, STREAMS)]


def free_ports(n: int) -> list[int]:
    sockets = [zmq.Context.instance().socket(zmq.PUB) for _ in range(n)]
    ports = [s.bind_to_random_port("tcp://127.0.0.1") for s in sockets]
    for s in sockets:
        s.close(linger=0)
    return ports


def usage(pids: list[int]) -> tuple[float, float]:
    """CPU seconds (user + system) and resident memory in MB of the processes together, from /proc."""
    cpu_ticks = rss_kb = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu_ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
        except (OSError, IndexError):  # the process has just exited
            pass
    return cpu_ticks / os.sysconf("SC_CLK_TCK"), rss_kb / 1024


def run_layout(layout: str, clip: Path, bundle: Path, paced: bool, expected: int) -> dict[str, object]:
    """One run; ``expected`` is how many predictions a stream gives when no frame is dropped."""
    ports = free_ports(2)
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)  # keep everything: the subscriber must not be what drops messages
    sub.setsockopt(zmq.SUBSCRIBE, b"edgeemo.")
    for port in ports:
        sub.connect(f"tcp://127.0.0.1:{port}")
    processes = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3"))
                 for cmd in commands(layout, clip, bundle, paced, ports)]
    predictions: dict[str, list[tuple[float, float]]] = {s: [] for s in STREAMS}
    finished: set[str] = set()
    samples = []  # (wall clock, CPU seconds, RSS MB), every quarter second
    try:
        while len(finished) < len(STREAMS):
            if not samples or time.time() - samples[-1][0] >= 0.25:
                samples.append((time.time(), *usage([p.pid for p in processes])))
            if sub.poll(1000):
                message = unpack(*sub.recv_multipart())
                if message["kind"] == "prediction":
                    predictions[message["stream"]].append((message["t_publish"], message["latency"]["total"]))
                elif message["event"] == "shutting_down":
                    finished.add(message["stream"])
            else:
                failed = [p for p in processes if p.poll() not in (None, 0)]
                if failed:
                    raise SystemExit(f"serve failed: {failed[0].stderr.read()[-2000:]}")
        for process in processes:
            process.wait(60)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        sub.close(linger=0)
        context.term()
    # Only the interval in which both streams were publishing: start-up and the last one alone are left out.
    start = max(p[0][0] for p in predictions.values())
    end = min(p[-1][0] for p in predictions.values())
    streams, inside_total = {}, 0
    for stream, items in predictions.items():
        times = np.array([t for t, _ in items])
        totals = np.array([latency for t, latency in items if start <= t <= end])
        inside = int(((times >= start) & (times <= end)).sum())
        inside_total += inside
        streams[stream] = {"predictions": len(items), "missed": expected - len(items),
                           "predictions_per_second": round((inside - 1) / (end - start), 2),
                           "latency_total": summary_ms(totals)}
    wall, cpu, rss = (np.array(column) for column in zip(*samples))
    cpu_s = float(np.interp(end, wall, cpu) - np.interp(start, wall, cpu))
    return {"layout": layout, "paced": paced, "processes": len(processes), "overlap_s": round(end - start, 2),
            "streams": streams,
            "total_predictions_per_second": round(sum(s["predictions_per_second"] for s in streams.values()), 2),
            "cpu_cores_busy": round(cpu_s / (end - start), 2),
            "cpu_ms_per_prediction": round(1000 * cpu_s / inside_total, 2), "peak_rss_mb": round(float(rss.max()))}


def write(out: Path, result: dict) -> list[Path]:
    lines = [
        "# Two streams on one machine: one serve process, or one process per stream",
        "",
        f"{result['date']}, `{result['command']}`.",
        "",
        machine_line(result),
        "",
        f"Video: the demo clip (a real face) played forward and back to {result['frames']} frames at "
        f"{result['clip_fps']:g} frames/s, the same file for both streams. Bundle: {result['bundle_source']}. "
        "Per stream: predictions per second and end-to-end latency (`latency.total`, capture to publication) "
        "while both streams ran, and frames that gave no prediction (dropped: the pipeline was busy when the "
        "next frame came). CPU: user + system time of the serve processes over that interval, as cores busy and "
        "per prediction; memory: their resident size together, at its peak.",
        "",
        "| mode | layout | pred/s a, b | dropped a, b | p50 / p99 ms a | p50 / p99 ms b | cores busy "
        "| CPU ms / pred | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["runs"]:
        a, b = run["streams"]["a"], run["streams"]["b"]
        lines.append(
            f"| {'paced 30/s' if run['paced'] else 'unpaced (--fast)'} | {run['layout']} "
            f"| {a['predictions_per_second']:.1f}, {b['predictions_per_second']:.1f} | {a['missed']}, {b['missed']} "
            f"| {a['latency_total']['median_ms']:.1f} / {a['latency_total']['p99_ms']:.1f} "
            f"| {b['latency_total']['median_ms']:.1f} / {b['latency_total']['p99_ms']:.1f} "
            f"| {run['cpu_cores_busy']:.2f} | {run['cpu_ms_per_prediction']:.1f} | {run['peak_rss_mb']} |"
        )
    lines += [
        "",
        result["conclusion"],
        "",
        "Reading it: in one process each stream is processed on a thread of its own, and MediaPipe and ONNX "
        "Runtime let go of the GIL while they work, so the process uses every core and neither stream waits for "
        "the other's frame. Two processes run side by side with a GIL each, but each loads its own MediaPipe (and "
        "TensorFlow, where the offline extra is installed, as here) and its own models.",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "multisource.json", result)
    atomic_write_text(out / "multisource.md", "\n".join(lines))
    return [out / "multisource.json", out / "multisource.md", plot(out / "multisource.png", result)]


def plot(path: Path, result: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    labels = [f"{'paced' if r['paced'] else 'unpaced'}\n{r['layout']}" for r in result["runs"]]
    x = np.arange(len(labels))
    for offset, stream in ((-0.2, "a"), (0.2, "b")):
        left.bar(x + offset, [r["streams"][stream]["predictions_per_second"] for r in result["runs"]], 0.4,
                 label=f"stream {stream}")
        right.bar(x + offset, [r["streams"][stream]["latency_total"]["median_ms"] for r in result["runs"]], 0.4,
                  label=f"stream {stream} median")
        right.scatter(x + offset, [r["streams"][stream]["latency_total"]["p99_ms"] for r in result["runs"]],
                      marker="_", s=300, color="black")
    for ax, title in ((left, "predictions per second, per stream"), (right, "end-to-end ms (bar p50, tick p99)")):
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Two streams, {result['machine']['cores']} cores: {result['machine']['cpu']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def conclusion(runs: list[dict]) -> str:
    """Which layout did better on each count, in one paragraph."""
    by = {(r["layout"], r["paced"]): r for r in runs}

    def worst_p99(run: dict) -> float:
        return max(s["latency_total"]["p99_ms"] for s in run["streams"].values())

    def dropped(run: dict) -> int:
        return sum(s["missed"] for s in run["streams"].values())

    fast = [by[(layout, False)] for layout in LAYOUTS]
    paced = [by[(layout, True)] for layout in LAYOUTS]
    return (
        f"Capacity, unpaced: {fast[0]['total_predictions_per_second']:.0f} predictions/s in one process, "
        f"{fast[1]['total_predictions_per_second']:.0f} in two. At camera pace (30 frames/s per stream): "
        f"worst stream p99 {worst_p99(paced[0]):.1f} ms in one process, {worst_p99(paced[1]):.1f} ms in two; "
        f"frames dropped {dropped(paced[0])} and {dropped(paced[1])}; CPU {paced[0]['cpu_ms_per_prediction']:.1f} and "
        f"{paced[1]['cpu_ms_per_prediction']:.1f} ms per prediction; memory {paced[0]['peak_rss_mb']} and "
        f"{paced[1]['peak_rss_mb']} MB."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--frames", type=int, default=600, help="frames per stream (default 600: 20 s at 30/s)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="results folder (default bench/results, from the repository root)")
    args = parser.parse_args(argv)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="edgeemo-multisource-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        fps = long_clip(clip, args.frames)
        if (DEFAULT_BUNDLE / MANIFEST).is_file():
            bundle, source = DEFAULT_BUNDLE, "the default bundle, edgeemo/models/default"
        else:
            bundle = Path(tmp) / "bundle"
            build_bundle(bundle, 64, "t-emo")
            source = "no default bundle installed, so an untrained K=64 T-EMO bundle (paper hyperparameters)"
        window = load_bundle(bundle)
        expected = args.frames - (window.frames - 1) * window.frame_stride
        runs = []
        for paced in (False, True):
            for layout in LAYOUTS:
                print(f"{'paced' if paced else 'unpaced'}, {layout} ...", file=sys.stderr, flush=True)
                runs.append(run_layout(layout, clip, bundle, paced, expected))
    result = {"benchmark": "two streams: one serve process or one per stream", "date": now(),
              "command": "python -m edgeemo.benchmark.multisource" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
              "machine": before, "pinned_cpu": None, "load_average_after": load_average(), "frames": args.frames,
              "clip_fps": fps, "bundle_source": source, "runs": runs, "conclusion": conclusion(runs)}
    for path in write(args.out, result):
        print(path)
    print(json.dumps(result["conclusion"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
