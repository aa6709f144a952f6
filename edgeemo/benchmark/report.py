"""The benchmark results as files people read: JSON (everything), Markdown (tables) and PNG (figures)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from edgeemo.commands.common import import_offline
from edgeemo.errors import EdgeemoError
from edgeemo.io import atomic_write_json, atomic_write_text

CLASSIFIER = "classifier_latency"
END_TO_END = "end_to_end"


def machine_line(result: dict) -> str:
    m = result["machine"]
    pinned = f"timed on CPU {result['pinned_cpu']} only" if result.get("pinned_cpu") is not None else "not pinned"
    return (f"Machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), {m['ram_gb']} GB RAM, {m['os']}; "
            f"Python {m['python']}, onnxruntime {m['onnxruntime']}, mediapipe {m['mediapipe']}; {pinned}. "
            f"Load average (1, 5, 15 min) before {_load(m['load_average'])}, "
            f"after {_load(result['load_average_after'])}"
            " (other processes share this machine: a load above 0 means they competed for its cores).")


def write_classifier(out: Path, result: dict) -> list[Path]:
    rows = result["rows"]
    lines = [
        "# Classifier latency against K",
        "",
        f"{result['date']}, `{result['command']}`{' (quick mode: not for comparison)' if result['quick'] else ''}.",
        "",
        machine_line(result),
        "",
        f"All six emotion models on one window of {result['frames']} frames, per frame: "
        "`edgeemo.classifier.EmotionClassifier.classify` (six ONNX Runtime sessions, batch 1, one thread), "
        f"timed call by call with `time.perf_counter` after a warm-up for {result['budget_s']:g} s per row. "
        f"Models: {result['models']}; exported with tf2onnx, weights untrained (latency depends on the graph, "
        "not on the weights' values).",
        "",
        "| K | T-EMO median ms | T-EMO p99 ms | T-EMO CPU ms | R-EMO median ms | R-EMO p99 ms | R-EMO CPU ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_key = {(row["k"], row["arch"]): row for row in rows}
    for k in sorted({row["k"] for row in rows}, reverse=True):
        cells = [f"{row['median_ms']:.3f} | {row['p99_ms']:.3f} | {row['cpu_median_ms']:.3f}"
                 for row in (by_key[(k, "T-EMO")], by_key[(k, "R-EMO")])]
        lines.append(f"| {k} | {' | '.join(cells)} |")
    lines += [
        "",
        "Median and p99: wall-clock time per frame (`time.perf_counter`), what the pipeline waits. CPU: the "
        "median of `time.process_time` per frame, the processor time itself, which other programs competing "
        "for the cores do not inflate.",
        "",
        "R-EMO differs from T-EMO only in training (its convolution keeps its random weights), so both export "
        "to the same ONNX graph: equal latency is expected.",
        "",
    ]
    paths = write_record(out, CLASSIFIER, result, "\n".join(lines))
    paths.append(_plot_classifier(out / f"{CLASSIFIER}.png", result))
    return paths


def write_end_to_end(out: Path, result: dict) -> list[Path]:
    pipeline, floor = result["pipeline"], result["mediapipe_floor"]
    lines = [
        "# End to end: one stream, frame by frame",
        "",
        f"{result['date']}, `{result['command']}`{' (quick mode: not for comparison)' if result['quick'] else ''}.",
        "",
        machine_line(result),
        "",
        f"Video: `{result['video']}` ({floor['frame_size'][1]}x{floor['frame_size'][0]}, a real face; "
        f"{result['video_credit']}), read unpaced, {_times(pipeline['passes'])}. "
        f"Bundle: {result['bundle_source']} (`{pipeline['bundle']}`, {pipeline['landmarks_read']} landmarks read, "
        f"window {pipeline['window']['frames']} frames, stride {pipeline['window']['stride']}).",
        "",
        "Stages from the prediction messages' `latency` maps (`edgeemo.messages`), "
        f"over {pipeline['predictions']} predictions:",
        "",
        "| stage | median ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|",
    ]
    for stage, stats in pipeline["stages"].items():
        lines.append(f"| {stage} | {stats['median_ms']:.3f} | {stats['p99_ms']:.3f} | {stats['mean_ms']:.3f} |")
    lines += [
        "",
        "`capture` is decoding the frame; `total` runs from the decoded frame to the published message "
        "(wait + landmarks + classify + publish).",
        "",
        f"Sustained: **{pipeline['frames_per_second']:.1f} frames/s** on one core over {pipeline['frames']} frames "
        f"(decode, face mesh, ring buffer, six models, message); {pipeline['frames_per_cpu_second']:.1f} frames "
        "per second of CPU time (the rate on a core of its own).",
        "",
        f"Floor, MediaPipe face mesh alone (tracking mode, frames decoded beforehand): median "
        f"{floor['detect']['median_ms']:.3f} ms, p99 {floor['detect']['p99_ms']:.3f} ms, "
        f"CPU {floor['detect']['cpu_median_ms']:.3f} ms; {floor['frames_per_second']:.1f} frames/s "
        f"({floor['frames_per_cpu_second']:.1f} per second of CPU time); face found in "
        f"{floor['face_found_share']:.0%} of frames.",
        "",
    ]
    lines += _against_mediapipe(result)
    paths = write_record(out, END_TO_END, result, "\n".join(lines))
    paths.append(_plot_end_to_end(out / f"{END_TO_END}.png", result))
    return paths


def _against_mediapipe(result: dict) -> list[str]:
    """The pipeline (and the per-emotion one, where the run timed both) against MediaPipe alone."""
    floor = result["mediapipe_floor"]["detect"]
    runs = [("serve's pipeline", result["pipeline"])]
    if "pipeline_per_emotion" in result:
        runs.append(("the same with the six per-emotion models", result["pipeline_per_emotion"]))
    lines = ["Against MediaPipe alone, same run (`total` over the face mesh's own time per frame):", "",
             "| pipeline | classifier | classify median ms | total median ms | total p99 ms | p50 / MediaPipe p50 | "
             "p99 / MediaPipe p99 | frames/s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, run in runs:
        total = run["stages"]["total"]
        lines.append(f"| {name} | {run.get('classifier', '')} | {run['stages']['classify']['median_ms']:.3f} | "
                     f"{total['median_ms']:.3f} | {total['p99_ms']:.3f} | "
                     f"{total['median_ms'] / floor['median_ms']:.2f} x | {total['p99_ms'] / floor['p99_ms']:.2f} x | "
                     f"{run['frames_per_second']:.1f} |")
    lines.append("")
    if "alternating" in result:  # records before 2026-12-06 have no alternating blocks
        alt = result["alternating"]
        lines += [f"Alternating, {len(alt['blocks'])} blocks of the pipeline ({alt['pipeline_s']:g} s) then "
                  f"MediaPipe alone ({alt['mediapipe_s']:g} s), so that both see the same minutes of this machine: "
                  f"p50 / MediaPipe p50 **{alt['p50_ratio_median']:.2f} x** (median of the blocks; "
                  f"{alt['p50_ratio_min']:.2f}-{alt['p50_ratio_max']:.2f} x), p99 / MediaPipe p99 "
                  f"{alt['p99_ratio_median']:.2f} x ({alt['p99_ratio_min']:.2f}-{alt['p99_ratio_max']:.2f} x).", ""]
    return lines


def write_record(out: Path, name: str, result: dict, markdown: str) -> list[Path]:
    """A benchmark's record: OUT/NAME.json (everything) and OUT/NAME.md (the tables), each written whole."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{name}.json", result)
    atomic_write_text(out / f"{name}.md", markdown)
    return [out / f"{name}.json", out / f"{name}.md"]


def record_or_exit(name: str, out: Path, compute: Callable[[], dict], markdown: Callable[[dict], str],
                   figure: Callable[[dict, Path], object]) -> None:
    """A benchmark's command-line ending: ``compute()``, then its record and OUT/NAME.png written and its tables
    printed; bad input (an EdgeemoError: a bundle, the photos) is one line naming the benchmark, exit status 2,
    as the CLI says it."""
    try:
        result = compute()
    except EdgeemoError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    tables = markdown(result)
    write_record(out, name, result, tables)
    figure(result, out / f"{name}.png")
    print(tables)


def pyplot():
    """matplotlib.pyplot drawing to files only (no display), or a one-line error naming the extra to install."""
    matplotlib = import_offline("matplotlib")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _plot_classifier(path: Path, result: dict) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for arch, marker in (("T-EMO", "o"), ("R-EMO", "s")):
        rows = sorted((row for row in result["rows"] if row["arch"] == arch), key=lambda row: row["k"])
        ks = [row["k"] for row in rows]
        line, = ax.plot(ks, [row["median_ms"] for row in rows], marker=marker, label=f"{arch} median")
        ax.plot(ks, [row["p99_ms"] for row in rows], marker=marker, linestyle="--", color=line.get_color(),
                alpha=0.6, label=f"{arch} p99")
        ax.plot(ks, [row["cpu_median_ms"] for row in rows], linestyle=":", color=line.get_color(),
                label=f"{arch} CPU median")
    ax.set_xscale("log")
    ax.set_xticks(sorted({row["k"] for row in result["rows"]}))
    ax.get_xaxis().set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("K, landmarks per emotion model")
    ax.set_ylabel("ms per frame, all six models")
    ax.set_title(f"Classifier latency, batch 1, one thread\n{result['machine']['cpu']}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_end_to_end(path: Path, result: dict) -> Path:
    plt = pyplot()
    stages = {k: v for k, v in result["pipeline"]["stages"].items() if k != "wait"}
    names = [*stages, "face mesh\nalone"]
    medians = [v["median_ms"] for v in stages.values()] + [result["mediapipe_floor"]["detect"]["median_ms"]]
    p99s = [v["p99_ms"] for v in stages.values()] + [result["mediapipe_floor"]["detect"]["p99_ms"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.bar(names, medians, label="median")
    ax.scatter(names, p99s, color="black", marker="_", s=400, label="p99", zorder=3)
    ax.set_ylabel("ms per frame")
    ax.set_title(f"End to end, one stream: {result['pipeline']['frames_per_second']:.0f} frames/s on one core\n"
                 f"{result['machine']['cpu']}")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times over"


def _load(values: list[float] | None) -> str:
    return "unknown" if values is None else ", ".join(f"{v:.2f}" for v in values)
