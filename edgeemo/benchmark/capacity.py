"""How many 30 fps real-face streams this machine serves with no frame dropped: one process (its stream threads on
any core, or on one), one per stream, or one per core.

    python -m edgeemo.benchmark.capacity [--seconds 40] [--one-process 8,10,12,14] [--one-process-pinned 10,12]
                                         [--per-stream 10,12,14,16] [--per-core 10,12,14] [--process-every N]
                                         [--frame-queue N]

Real ``edgeemo serve`` processes on the demo clip (a real face, played forward and back) paced at 30
frames/s per stream, as cameras deliver: N streams in one process (``--camera`` N times; pinned: with
``--stream-cpus`` naming the first core, so the streams' own threads run there and MediaPipe's on every core),
N processes of one stream each, or one process per core, each held to its core (its CPU affinity, as systemd's
``CPUAffinity=`` or a Kubernetes static CPU policy would) with the streams dealt out between them. A
subscriber records every prediction. A stream dropped a frame when its capture thread pushed one out of the
stream's frame queue before its processing thread took it: serve's own counter
``edgeemo_frames_dropped_total``, read from each process's /metrics every half second. Only the
interval in which every stream was publishing counts (start-up, when the other processes load MediaPipe,
is left out); windows refused for timing (``edgeemo_windows_refused_total``) are counted beside. Each layout
goes up its list of N and stops at the first N with a drop (or a stream that never published).
``--process-every N`` runs serve so (the face mesh on every N-th frame; frames passed over on purpose are not
drops); ``--frame-queue N`` lets up to N frames wait per stream. Writes bench/results/capacity.{json,md,png},
capacity_every<N>.* for --process-every N > 1, with _queue<N> for a frame queue other than serve's default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import zmq
from prometheus_client.parser import text_string_to_metric_families

from edgeemo.benchmark.multisource import free_ports, long_clip
from edgeemo.benchmark.report import machine_line
from edgeemo.benchmark.timing import load_average, machine, now, summary_ms
from edgeemo.bundle import load_bundle
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.io import atomic_write_json, atomic_write_text
from edgeemo.messages import unpack
from edgeemo.serve import FRAME_QUEUE

NAME = "capacity"
PINNED = "one process, stream threads on one core"
LAYOUTS = ("one process", PINNED, "one per stream", "one per core")
MEMORY_MARGIN_MB = 2000  # a trial whose processes could not fit in the memory left is not started


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def _counters(metrics_ports: list[int], totals: dict[str, dict[str, float]]) -> None:
    """Update ``totals`` {metric: {stream: value}} from each serve process's /metrics (gone ones are skipped)."""
    for port in metrics_ports:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5).read().decode()
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            if family.name in ("edgeemo_frames_dropped", "edgeemo_windows_refused"):
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        totals[family.name][sample.labels["stream"]] = sample.value


def run_trial(layout: str, n: int, clip: Path, bundle: Path, process_every: int = 1,
              frame_queue: int = FRAME_QUEUE) -> dict[str, object]:
    streams = stream_names(n)
    base = [sys.executable, "-m", "edgeemo", "serve", "--model", str(bundle), "--process-every", str(process_every),
            "--frame-queue", str(frame_queue)]
    if layout == PINNED:
        base = base + ["--stream-cpus", str(min(os.sched_getaffinity(0)))]
    groups = processes_of(layout, streams)
    ports, metrics_ports = free_ports(len(groups)), free_ports(len(groups))
    commands = [base + ["--bind", f"tcp://127.0.0.1:{p}", "--metrics-port", str(m)]
                + [a for s in group for a in ("--camera", str(clip), "--stream", s)]
                for p, m, (_, group) in zip(ports, metrics_ports, groups)]
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)  # the subscriber must not be what drops messages
    sub.setsockopt(zmq.SUBSCRIBE, b"edgeemo.")
    for port in ports:
        sub.connect(f"tcp://127.0.0.1:{port}")
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                  preexec_fn=None if cpu is None else _held_to(cpu))
                 for c, (cpu, _) in zip(commands, groups)]
    captured: dict[str, list[tuple[float, float]]] = {s: [] for s in streams}
    finished: set[str] = set()
    peak_rss = 0.0
    totals: dict[str, dict[str, float]] = {"edgeemo_frames_dropped": {}, "edgeemo_windows_refused": {}}
    at_overlap = None  # the counters when the last stream began publishing
    last_scrape = 0.0
    try:
        while len(finished) < n:
            peak_rss = max(peak_rss, _rss_mb([p.pid for p in processes]))
            if time.time() - last_scrape >= 0.5 and not finished:
                _counters(metrics_ports, totals)
                last_scrape = time.time()
                if at_overlap is None and all(captured.values()):
                    at_overlap = {k: dict(v) for k, v in totals.items()}
            if sub.poll(500):
                message = unpack(*sub.recv_multipart())
                if message["kind"] == "prediction":
                    captured[message["stream"]].append((message["t_capture"], message["latency"]["total"]))
                elif message["event"] == "shutting_down":
                    finished.add(message["stream"])
            elif any(p.poll() not in (None, 0) for p in processes):
                failed = next(p for p in processes if p.poll() not in (None, 0))
                raise SystemExit(f"serve failed: {failed.stderr.read()[-2000:]}")
        for process in processes:
            process.wait(60)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        sub.close(linger=0)
        context.term()
    silent = [s for s, items in captured.items() if not items]
    if silent:  # never all publishing at once: no overlap to measure, the trial failed on the whole run
        whole = int(sum(totals["edgeemo_frames_dropped"].values()))
        return {"layout": layout, "streams": n, "processes": len(processes), "overlap_s": 0.0,
                "dropped": {}, "dropped_total": whole, "dropped_whole_run": whole, "windows_refused": 0,
                "predictions": {s: len(items) for s, items in captured.items()}, "published_nothing": silent,
                "latency_total": summary_ms(np.asarray([lat for items in captured.values() for _, lat in items]
                                                       or [float("nan")])),
                "peak_rss_mb": round(peak_rss)}
    start = max(items[0][0] for items in captured.values())
    end = min(items[-1][0] for items in captured.values())
    at_overlap = at_overlap or {k: {} for k in totals}

    def since_overlap(metric: str) -> dict[str, int]:
        return {s: int(totals[metric].get(s, 0) - at_overlap[metric].get(s, 0)) for s in streams}

    latencies = [latency for items in captured.values() for t, latency in items if start <= t <= end]
    dropped, refused = since_overlap("edgeemo_frames_dropped"), since_overlap("edgeemo_windows_refused")
    return {"layout": layout, "streams": n, "processes": len(processes), "overlap_s": round(end - start, 2),
            "dropped": dropped, "dropped_total": sum(dropped.values()),
            "dropped_whole_run": int(sum(totals["edgeemo_frames_dropped"].values())),
            "windows_refused": sum(refused.values()),
            "predictions": {s: len(items) for s, items in captured.items()},
            "latency_total": summary_ms(np.asarray(latencies)), "peak_rss_mb": round(peak_rss)}


def stream_names(n: int) -> list[str]:
    return [f"s{i}" for i in range(n)]


def processes_of(layout: str, streams: list[str]) -> list[tuple[int | None, list[str]]]:
    """A layout's serve processes: for each, the core it is held to (None: any) and its streams."""
    if layout == "one per stream":
        return [(None, [s]) for s in streams]
    if layout == "one per core":
        return deal(streams, sorted(os.sched_getaffinity(0)))
    return [(None, streams)]


def deal(streams: list[str], cores: list[int]) -> list[tuple[int, list[str]]]:
    """Streams dealt out to cores like cards: core i serves streams i, i + cores, ...; a core left without a
    stream gets no process."""
    return [(cpu, streams[i::len(cores)]) for i, cpu in enumerate(cores) if streams[i::len(cores)]]


def _held_to(cpu: int):
    """For Popen's preexec_fn: the child and every thread it starts run on ``cpu`` only."""
    return lambda: os.sched_setaffinity(0, {cpu})


def failed(trial: dict) -> bool:
    """A trial with a drop, or with a stream that never published (then no overlap could be measured)."""
    return bool(trial["dropped_total"] or trial.get("published_nothing"))


def run(seconds: float, ladders: dict[str, list[int]], bundle: Path, process_every: int = 1,
        frame_queue: int = FRAME_QUEUE, progress=print) -> dict[str, object]:
    before = machine()
    trials = []
    with tempfile.TemporaryDirectory(prefix="edgeemo-capacity-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        fps = long_clip(clip, int(seconds * 30))
        for layout, ladder in ladders.items():
            rss_per_process = None
            for n in ladder:
                processes = len(processes_of(layout, stream_names(n)))
                if rss_per_process and processes * rss_per_process + MEMORY_MARGIN_MB > _available_mb():
                    progress(f"{layout}, {n} streams: not started, {processes} processes would not fit in memory")
                    break
                progress(f"{layout}, {n} streams")
                trial = run_trial(layout, n, clip, bundle, process_every, frame_queue)
                trials.append(trial)
                rss_per_process = trial["peak_rss_mb"] / trial["processes"]
                progress(f"  dropped {trial['dropped_total']}, p99 {trial['latency_total']['p99_ms']:.1f} ms, "
                         f"overlap {trial['overlap_s']} s")
                if failed(trial):
                    break
    best = {layout: max((t["streams"] for t in trials if t["layout"] == layout and not failed(t)),
                        default=0) for layout in ladders}
    return {"benchmark": "concurrent 30 fps streams with no frame dropped", "date": now(),
            "command": "python -m edgeemo.benchmark.capacity " + " ".join(sys.argv[1:]), "machine": before,
            "load_average_after": load_average(), "pinned_cpu": None, "seconds": seconds, "clip_fps": fps,
            "bundle": load_bundle(bundle).bundle_id, "process_every": process_every,
            "frame_queue": frame_queue,
            "classifier": "streaming pair" if load_bundle(bundle).streaming else "six per-emotion models",
            "trials": trials, "most_streams_without_drops": best}


def write(out: Path, result: dict) -> list[Path]:
    best = result["most_streams_without_drops"]
    every = result.get("process_every", 1)
    queue = result.get("frame_queue", 1)  # records before --frame-queue ran with one frame
    name = NAME + ("" if every == 1 else f"_every{every}") + ("" if queue == FRAME_QUEUE else f"_queue{queue}")
    label = "every frame processed" if every == 1 else f"serve --process-every {every}"
    processed = label if every == 1 else f"`{label}`: the face mesh and models on every {every}th frame"
    processed += f"; `--frame-queue {queue}`: up to {queue} frame{'s' if queue > 1 else ''} may wait per stream"
    lines = [
        "# Concurrent 30 fps real-face streams with no frame dropped",
        "",
        f"{result['date']}, `{result['command']}`.",
        "",
        machine_line(result),
        "",
        f"Each stream: the demo clip (a real face) played forward and back, {result['seconds']:g} s paced at "
        f"{result['clip_fps']:g} frames/s, {processed}. Bundle `{result['bundle']}` ({result['classifier']}). "
        "Dropped: frames pushed out of the stream's frame queue before its thread took them (serve's "
        "`edgeemo_frames_dropped_total`) while every stream was publishing, and over the whole run (start-up "
        "included); windows refused for timing beside; latency: `latency.total`, capture to publication, over "
        "every stream.",
        "",
        "| layout | streams | processes | overlap s | dropped | dropped, whole run | windows refused | p50 ms | "
        "p99 ms | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in result["trials"]:
        silent = f" (no prediction from {', '.join(t['published_nothing'])})" if t.get("published_nothing") else ""
        lines.append(f"| {t['layout']} | {t['streams']} | {t['processes']} | {t['overlap_s']} | "
                     f"{t['dropped_total']}{silent} | "
                     f"{t['dropped_whole_run']} | {t['windows_refused']} | "
                     f"{t['latency_total']['median_ms']:.1f} | {t['latency_total']['p99_ms']:.1f} | {t['peak_rss_mb']} |")
    lines += ["", "Most streams with no frame dropped: " + ", ".join(f"{layout}: **{n}**" for layout, n in best.items())
              + " (each layout stops at its first trial with a drop).", ""]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{name}.json", result)
    atomic_write_text(out / f"{name}.md", "\n".join(lines))
    paths = [out / f"{name}.json", out / f"{name}.md"]
    import matplotlib  # mediapipe depends on it: present on every install

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for layout, marker in zip(LAYOUTS, "oDs^"):
        rows = [t for t in result["trials"] if t["layout"] == layout]
        ax.plot([t["streams"] for t in rows], [t["latency_total"]["p99_ms"] for t in rows], marker=marker,
                label=f"{layout}, p99")
        for t in rows:
            if failed(t):
                silent = ", silent streams" if t.get("published_nothing") else ""
                ax.annotate(f"{t['dropped_total']} dropped{silent}", (t["streams"], t["latency_total"]["p99_ms"]),
                            fontsize=8)
    ax.set_xlabel("concurrent 30 fps streams")
    ax.set_ylabel("capture to publication, ms")
    ax.set_title(f"Streams on {result['machine']['cores']} cores, {label}\n"
                 f"{result['machine']['cpu']}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=120)
    plt.close(fig)
    return paths + [out / f"{name}.png"]


def _ladder(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="clip length per trial")
    parser.add_argument("--one-process", type=_ladder, default=[8, 10, 12, 14], metavar="N,N,...")
    parser.add_argument("--one-process-pinned", type=_ladder, default=[10, 12], metavar="N,N,...")
    parser.add_argument("--per-stream", type=_ladder, default=[10, 12, 14, 16], metavar="N,N,...")
    parser.add_argument("--per-core", type=_ladder, default=[10, 12, 14], metavar="N,N,...")
    parser.add_argument("--model", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--process-every", type=int, default=1, metavar="N",
                        help="serve --process-every N: the face mesh on every N-th frame (default 1: every frame)")
    parser.add_argument("--frame-queue", type=int, default=FRAME_QUEUE, metavar="N",
                        help=f"serve --frame-queue N: frames that may wait per stream (default {FRAME_QUEUE}, serve's)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    started = time.time()
    ladders = {"one process": args.one_process, PINNED: args.one_process_pinned, "one per stream": args.per_stream,
               "one per core": args.per_core}
    result = run(args.seconds, {layout: ladder for layout, ladder in ladders.items() if ladder}, args.model,
                 args.process_every, args.frame_queue)
    result["wall_s"] = round(time.time() - started, 1)
    for path in write(args.out, result):
        print(path)


if __name__ == "__main__":
    main()
