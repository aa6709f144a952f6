"""Soak and fault benchmark: ``edgeemo serve`` for minutes on end, then with faults injected by real processes.

    python -m edgeemo.benchmark.soak                  # 10 minutes, then the faults; writes bench/results/soak.*
    python -m edgeemo.benchmark.soak --minutes 1      # a quick look (not for the record)

Everything is real and runs as separate processes: ``edgeemo relay``; ``edgeemo serve --connect`` to it,
reading a looping clip of real faces (London dev faces, neutral to smiling and back, 30 frames/s, paced
like a camera); and this process as the subscriber, through the relay. Every 10 s it samples serve's
resident memory (``VmRSS`` from /proc), its metrics and its health endpoints.

Soak phase: RSS growth after the first minute (by then MediaPipe, ONNX Runtime and numba have
allocated what they keep), sequence gaps on the subscriber, frames dropped by serve (it processes the
newest frame only, so a slower machine drops frames instead of falling behind).

Fault phase, in the same serve process, one fault after the other, each checked for being reported
(status event, log line, metric or health endpoint) and recovered from (predictions again):

1. a subscriber that never reads (connected to the relay, receive queue of 10): the other subscriber
   must lose nothing;
2. the source file removed, then restored once serve has reported the loss;
3. the relay killed (SIGKILL) and started again on the same ports;
4. SIGTERM while serve waits to reopen a removed source: exit 0 within 2 s.

Timed on a shared machine: others' load changes the drops (recorded with the machine's load average).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import zmq

from edgeemo.benchmark.timing import machine
from edgeemo.io import atomic_write_json, atomic_write_text
from edgeemo.subscriber import Subscriber

NAME = "soak"
REPO = Path(__file__).resolve().parents[2]
FACES = REPO / "offline" / "resources" / "london-dev" / "images"
PEOPLE = ("002", "005", "011")
FPS = 30.0
SAMPLE_EVERY_S = 10.0
WARM_UP_S = 60.0  # RSS growth is measured from here
STREAM = "soak"
STALE_S = 5.0  # serve's default --stale-after


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(faces: Path, path: Path) -> tuple[Path, int]:
    """A few real faces in turn, each neutral, turning to a smile and back: 3 s a face at 30 frames/s."""
    frames = []
    for person in PEOPLE:
        neutral, smiling = (cv2.imread(str(faces / f"{person}_{kind}.jpg")) for kind in ("neutral", "smiling"))
        if neutral is None or smiling is None:
            raise SystemExit(f"soak: {faces}: no {person}_neutral.jpg / {person}_smiling.jpg (pass --faces DIR)")
        smiling = cv2.resize(smiling, neutral.shape[1::-1])
        fade = [cv2.addWeighted(neutral, 1 - a, smiling, a, 0) for a in np.linspace(0, 1, 15)]
        frames += [neutral] * 30 + fade + [smiling] * 30 + fade[::-1]
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path, len(frames)


def edgeemo(*args: str, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "edgeemo", *args], stdout=subprocess.DEVNULL, stderr=out,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))


def start_relay(publishers: str, subscribers: str, log: Path) -> subprocess.Popen:
    process = edgeemo("relay", "--publishers", publishers, "--subscribers", subscribers, log=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "edgeemo relay:" in log.read_text(errors="replace").split("--- relay start")[-1]:
            return process
        time.sleep(0.1)
    raise SystemExit(f"soak: the relay did not start: {log.read_text()[-2000:]}")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def scrape(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    wanted = {"edgeemo_frames_total", "edgeemo_frames_dropped_total", "edgeemo_frames_corrupt_total",
              "edgeemo_predictions_total", "edgeemo_source_reopens_total", "edgeemo_source_open_failures_total",
              "edgeemo_relay_connected", "edgeemo_last_frame_age_seconds", "edgeemo_stream_errors_total"}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def probe(port: int, path: str) -> int | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class Watch:
    """The subscriber's view, plus serve's samples: everything the report says, with times since start."""

    def __init__(self, sub: Subscriber, serve: subprocess.Popen, metrics_port: int, t0: float) -> None:
        self.sub, self.serve, self.port, self.t0 = sub, serve, metrics_port, t0
        self.predictions = 0
        self.gaps: list[dict] = []  # {"t", "kind", "missed"}
        self.events: list[dict] = []  # status events and peer changes seen
        self.samples: list[dict] = []
        self._last_seq: dict[str, int] = {}
        self._next_sample = t0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def on_peer(self, state: str, detail: str) -> None:
        self.events.append({"t": round(self.now(), 2), "source": "subscriber", "event": state, "detail": detail})

    def run(self, seconds: float, until=None) -> bool:
        """Receive and sample for ``seconds``, or until ``until(self)`` is true (then True)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and until(self):
                return True
            item = self.sub.receive(0.1)
            if item is not None:
                self._count(item[1])
            if time.monotonic() >= self._next_sample:
                self.sample()
        return until is not None and until(self)

    def sample(self) -> None:
        self._next_sample += SAMPLE_EVERY_S
        self.samples.append({
            "t": round(self.now(), 2), "rss_mb": rss_mb(self.serve.pid), "predictions_received": self.predictions,
            "healthz": probe(self.port, "/healthz"), "readyz": probe(self.port, "/readyz"),
            "load_average": [round(x, 2) for x in os.getloadavg()], **scrape(self.port),
        })

    def _count(self, message: dict) -> None:
        kind = message["kind"]
        if kind == "prediction":
            self.predictions += 1
        else:
            self.events.append({"t": round(self.now(), 2), "source": "status", "event": message["event"],
                                "detail": message["detail"]})
        last = self._last_seq.get(kind)
        seq = message["seq"]
        if last is not None and seq > last + 1:
            self.gaps.append({"t": round(self.now(), 2), "kind": kind, "missed": seq - last - 1})
        self._last_seq[kind] = seq

    def saw(self, event: str, since: float) -> bool:
        return any(e["event"] == event and e["t"] >= since - 0.01 for e in self.events)  # times kept to 0.01 s

    def predictions_since(self, count: int) -> bool:
        return self.predictions > count


def log_has(log: Path, text: str, since_bytes: int) -> bool:
    return text in log.read_bytes()[since_bytes:].decode(errors="replace")


def soak(minutes: float, faces: Path, work: Path) -> dict:
    clip, clip_frames = make_clip(faces, work / "faces.avi")
    kept = work / "faces.kept.avi"
    shutil.copy(clip, kept)
    publishers, subscribers = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    metrics_port = free_port()
    relay_log, serve_log = work / "relay.log", work / "serve.log"
    relay = start_relay(publishers, subscribers, relay_log)
    watch = None
    serve = None
    try:
        t0 = time.monotonic()
        holder: dict = {}
        sub = Subscriber(subscribers, streams=[STREAM], on_peer=lambda s, d: holder["watch"].on_peer(s, d))
        command = ["serve", "--camera", str(clip), "--loop", "--stream", STREAM, "--connect", publishers,
                   "--metrics-port", str(metrics_port)]
        serve = edgeemo(*command, log=serve_log)
        watch = holder["watch"] = Watch(sub, serve, metrics_port, t0)
        if not watch.run(180, lambda w: w.predictions > 0):
            raise SystemExit(f"soak: no prediction within 180 s: {serve_log.read_text()[-3000:]}")
        started_at = watch.now()
        gaps_before = len(watch.gaps)
        watch.run(minutes * 60)
        soak_end = watch.now()
        soak_result = summarise_soak(watch, started_at, soak_end, gaps_before)
        faults = inject_faults(watch, relay_log, serve_log, clip, kept, publishers, subscribers,
                               lambda r: holder.__setitem__("relay", r), relay)
        relay = holder.get("relay", relay)
    finally:
        if serve is not None and serve.poll() is None:
            serve.kill()
            serve.wait(10)
        if relay.poll() is None:
            relay.send_signal(signal.SIGTERM)
            relay.wait(10)
        if watch is not None:
            watch.sub.close()
    return {
        "command": "python -m edgeemo.benchmark.soak" + (f" --minutes {minutes:g}" if minutes != 10 else ""),
        "serve_command": "edgeemo " + " ".join(command).replace(str(clip), "faces.avi"),
        "clip": {"people": list(PEOPLE), "frames": clip_frames, "fps": FPS,
                 "size": list(cv2.imread(str(faces / f"{PEOPLE[0]}_neutral.jpg")).shape[1::-1])},
        "minutes": minutes, "soak": soak_result, "faults": faults,
        "samples": watch.samples, "events": watch.events, "gaps": watch.gaps,
        "serve_log_tail": serve_log.read_text(errors="replace")[-4000:],
    }


def summarise_soak(watch: Watch, start: float, end: float, gaps_before: int) -> dict:
    samples = [s for s in watch.samples if start <= s["t"] <= end and s.get("rss_mb")]
    after = [s for s in samples if s["t"] >= start + WARM_UP_S]
    base = after[0] if after else samples[0]
    rss = [s["rss_mb"] for s in after] or [base["rss_mb"]]
    first, last = samples[0], samples[-1]
    span = last["t"] - first["t"]
    frames = last.get("edgeemo_frames_total", 0) - first.get("edgeemo_frames_total", 0)
    dropped = last.get("edgeemo_frames_dropped_total", 0) - first.get("edgeemo_frames_dropped_total", 0)
    return {
        "start_s": start, "end_s": end, "samples": len(samples),
        "rss_mb_at_warm_up": base["rss_mb"], "rss_mb_max_after_warm_up": max(rss), "rss_mb_end": last["rss_mb"],
        "rss_growth_pct_after_warm_up": round(100 * (max(rss) - base["rss_mb"]) / base["rss_mb"], 2),
        "rss_growth_pct_end": round(100 * (last["rss_mb"] - base["rss_mb"]) / base["rss_mb"], 2),
        "sequence_gaps": sum(g["missed"] for g in watch.gaps[gaps_before:] if g["t"] <= end),
        "predictions_received": watch.predictions,
        "frames_processed_per_s": round(frames / span, 2) if span else None,
        # edgeemo_frames_total counts the frames processed; the source gave those and the dropped ones.
        "frames_dropped": dropped,
        "frames_dropped_pct": round(100 * dropped / (frames + dropped), 2) if frames + dropped else None,
        "frames_corrupt": last.get("edgeemo_frames_corrupt_total", 0),
        "stream_errors": last.get("edgeemo_stream_errors_total", 0),
        "readyz_failures": sum(1 for s in samples if s["readyz"] != 200),
        "healthz_failures": sum(1 for s in samples if s["healthz"] != 200),
        "load_average": [s["load_average"] for s in samples[:: max(1, len(samples) // 6)]],
    }


def inject_faults(watch: Watch, relay_log: Path, serve_log: Path, clip: Path, kept: Path,
                  publishers: str, subscribers: str, set_relay, relay: subprocess.Popen) -> list[dict]:
    faults = []
    clip_s = len(PEOPLE) * 90 / FPS

    # 1. A subscriber that never reads.
    t = watch.now()
    gaps = len(watch.gaps)
    context = zmq.Context.instance()
    stalled = context.socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 10)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(subscribers)
    count = watch.predictions
    watch.run(30)
    stalled.close(linger=0)
    missed = sum(g["missed"] for g in watch.gaps[gaps:])
    faults.append({"fault": "a subscriber that never reads (30 s)", "at_s": round(t, 1),
                   "reported": "nothing to report: the relay drops what the stalled subscriber cannot take",
                   "recovered": missed == 0 and watch.predictions > count,
                   "detail": f"the reading subscriber missed {missed} messages and received "
                             f"{watch.predictions - count} predictions meanwhile"})

    # 2. The source file removed, restored once serve has reported the loss.
    t = watch.now()
    offset = serve_log.stat().st_size
    clip.unlink()
    lost = watch.run(clip_s + 30, lambda w: w.saw("camera_lost", t))
    t_lost = watch.now()
    watch.run(STALE_S + 1)  # past serve's --stale-after: /readyz must say the stream is down
    readyz_while_lost = probe(watch.port, "/readyz")
    shutil.copy(kept, clip)
    count = watch.predictions
    back = watch.run(60, lambda w: w.saw("reconnected", t) and w.predictions > count + 10)
    faults.append({"fault": "the source file removed, restored after the loss was reported", "at_s": round(t, 1),
                   "reported": lost and log_has(serve_log, "camera_lost", offset),
                   "recovered": back, "seconds_to_report": round(t_lost - t, 1),
                   "seconds_to_recover_after_restore": round(watch.now() - t_lost - STALE_S - 1, 1),
                   "detail": f"status camera_lost and reconnected on the subscriber, /readyz {readyz_while_lost} "
                             "while it was gone"})

    # 3. The relay killed and started again.
    t = watch.now()
    offset = serve_log.stat().st_size
    relay.kill()
    relay.wait(10)
    watch.run(4)
    connected_while_down = scrape(watch.port).get("edgeemo_relay_connected")
    with open(relay_log, "a") as out:
        out.write("--- relay start\n")
    relay = start_relay(publishers, subscribers, relay_log)
    set_relay(relay)
    count = watch.predictions
    back = watch.run(60, lambda w: w.predictions > count + 10)
    watch.run(3)
    reported = log_has(serve_log, "relay_lost", offset) and log_has(serve_log, "relay_connected", offset)
    faults.append({"fault": "the relay killed (SIGKILL) and restarted after 4 s", "at_s": round(t, 1),
                   "reported": reported and connected_while_down == 0 and watch.saw("no_peer", t),
                   "recovered": back and scrape(watch.port).get("edgeemo_relay_connected") == 1,
                   "seconds_to_recover": round(watch.now() - t - 4 - 3, 1),
                   "detail": "serve logged relay_lost and relay_connected, edgeemo_relay_connected was "
                             f"{connected_while_down} while it was down; the subscriber saw no_peer then connected; "
                             f"{sum(g['missed'] for g in watch.gaps if g['t'] >= t)} messages lost with the relay"})

    # 4. SIGTERM while serve waits to reopen a removed source.
    t = watch.now()
    clip.unlink()
    waiting = watch.run(clip_s + 30, lambda w: w.saw("camera_lost", t))
    watch.run(1)
    signalled = time.monotonic()
    watch.serve.send_signal(signal.SIGTERM)
    try:
        code = watch.serve.wait(10)
    except subprocess.TimeoutExpired:
        code = None
    took = time.monotonic() - signalled
    watch.run(1)
    shutil.copy(kept, clip)
    faults.append({"fault": "SIGTERM while serve waits to reopen its source", "at_s": round(t, 1),
                   "reported": waiting and watch.saw("shutting_down", t),
                   "recovered": code == 0 and took < 2.0, "exit_code": code, "seconds_to_exit": round(took, 2),
                   "detail": "exit code and time from SIGTERM to the process's end"})
    return faults


def write(out: Path, result: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    from edgeemo.benchmark.report import machine_line

    paths = [out / f"{NAME}.json", out / f"{NAME}.md"]
    atomic_write_json(paths[0], result)
    s = result["soak"]
    lines = [
        "# Soak and faults: edgeemo serve unattended",
        "",
        f"{result['date']}, `{result['command']}`"
        + ("." if result["minutes"] >= 10 else " (short run: not for the record)."),
        "",
        machine_line(result),
        "",
        f"`{result['serve_command']}` through `edgeemo relay`, this benchmark subscribed through the relay. Clip: "
        f"{len(result['clip']['people'])} London dev faces (CC BY 4.0), each neutral to smiling and back, "
        f"{result['clip']['frames']} frames of {result['clip']['size'][0]}x{result['clip']['size'][1]} at "
        f"{result['clip']['fps']:g} frames/s, looped and paced like a camera. Samples every {SAMPLE_EVERY_S:g} s.",
        "",
        f"## Soak: {result['minutes']:g} minutes",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| RSS after the first minute | {s['rss_mb_at_warm_up']:.1f} MB |",
        f"| RSS growth after the first minute (max) | {s['rss_growth_pct_after_warm_up']:.2f} % |",
        f"| RSS growth after the first minute (at the end) | {s['rss_growth_pct_end']:.2f} % |",
        f"| sequence gaps on the subscriber | {s['sequence_gaps']} |",
        f"| predictions received | {s['predictions_received']} |",
        f"| frames processed per second | {s['frames_processed_per_s']} |",
        f"| frames dropped (processing slower than the source) | {s['frames_dropped']:.0f} "
        f"({s['frames_dropped_pct']} %) |",
        f"| corrupt frames, stream errors | {s['frames_corrupt']:.0f}, {s['stream_errors']:.0f} |",
        f"| /healthz, /readyz failures among the samples | {s['healthz_failures']}, {s['readyz_failures']} |",
        "",
        "Load average (1, 5, 15 min) through the soak: "
        f"{'; '.join(', '.join(f'{x:g}' for x in la) for la in s['load_average'])}. "
        "The machine's 2 cores are shared with other work: drops follow its load, not serve alone.",
        "",
        "## Faults (same process, one after the other)",
        "",
        "| fault | reported | recovered | detail |",
        "|---|---|---|---|",
    ]
    for f in result["faults"]:
        extra = "".join(f"; {k.replace('_', ' ')} {f[k]}" for k in ("seconds_to_report", "seconds_to_recover",
                                                                    "seconds_to_recover_after_restore",
                                                                    "exit_code", "seconds_to_exit") if k in f)
        reported = f["reported"] if isinstance(f["reported"], str) else ("yes" if f["reported"] else "**no**")
        lines.append(f"| {f['fault']} | {reported} | {'yes' if f['recovered'] else '**no**'} | {f['detail']}{extra} |")
    lines += ["", f"RSS over time: `{NAME}.png`.", ""]
    atomic_write_text(paths[1], "\n".join(lines))
    figure = _plot(out / f"{NAME}.png", result)
    return paths + ([figure] if figure else [])


def _plot(path: Path, result: dict) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the edge install has no matplotlib: the JSON and Markdown still say it all
        return None
    samples = [s for s in result["samples"] if s.get("rss_mb")]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([s["t"] / 60 for s in samples], [s["rss_mb"] for s in samples], marker=".", lw=1)
    soak = result["soak"]
    ax.axvspan((soak["start_s"] + WARM_UP_S) / 60, soak["end_s"] / 60, color="tab:green", alpha=0.08,
               label="soak after the first minute")
    for fault in result["faults"]:
        ax.axvline(fault["at_s"] / 60, color="tab:red", lw=0.8, ls="--")
    ax.set_xlabel("minutes since start")
    ax.set_ylabel("serve RSS (MB)")
    ax.set_title("edgeemo serve resident memory (dashed: faults injected)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeemo.benchmark.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak phase (default 10)")
    parser.add_argument("--faces", type=Path, default=FACES, help="folder of NNN_neutral.jpg / NNN_smiling.jpg")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where soak.{json,md,png} go")
    args = parser.parse_args(argv)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="edgeemo-soak-") as work:
        result = soak(args.minutes, args.faces, Path(work))
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": before,
              "load_average_after": [round(x, 2) for x in os.getloadavg()], **result}
    for path in write(args.out, result):
        print(path)
    print(json.dumps({"soak": result["soak"], "faults": result["faults"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
