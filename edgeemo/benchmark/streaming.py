"""Classification per frame, the per-emotion models against the fused streaming pair, at every K.

For each T-EMO bundle ``edgeemo bench`` built (the paper's per-emotion sizes at each K; R-EMO has the same
graph) and for the default bundle: the pair is added with ``edgeemo.fuse.write_pair`` (checked against the
six models on real-face windows, as ``edgeemo fuse`` does), then per frame, batch 1, one thread:

- old: ``EmotionClassifier.classify`` on one window [P, 2, U], six sessions (what serve ran before)
- streaming: ``StreamingClassifier.encode`` of the new frame, then ``classify`` of the window of encodings,
  two sessions (what serve runs now); and each of the two alone.

Ratios to MediaPipe's face mesh per frame come from the end-to-end benchmark of the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeemo.benchmark.timing import measure
from edgeemo.bundle import load_bundle
from edgeemo.classifier import EmotionClassifier
from edgeemo.fuse import write_pair
from edgeemo.io import atomic_write_json, atomic_write_text
from edgeemo.streaming import StreamingClassifier

NAME = "streaming_classifier"


def time_bundle(path: Path, budget_s: float, seed: int = 0) -> dict[str, object]:
    """Milliseconds per frame of the old path and of the streaming one (and its parts) for one bundle."""
    bundle = load_bundle(path)
    old, new = EmotionClassifier(bundle, threads=1), StreamingClassifier(bundle, threads=1)
    rng = np.random.default_rng(seed)
    union = len(bundle.landmarks_union)
    window = rng.normal(0.0, 0.3, (bundle.frames, 2, union)).astype(np.float32)
    face = np.ascontiguousarray(window[-1].T)
    encodings = new.encode_frames(window.transpose(0, 2, 1))

    def streaming_frame() -> None:
        new.encode(face)
        new.classify(encodings)

    times = {name: measure(call, budget_s, warmup=20).summary() for name, call in (
        ("old", lambda: old.classify(window)), ("streaming", streaming_frame),
        ("encoder", lambda: new.encode(face)), ("head", lambda: new.classify(encodings)))}
    return {"bundle": bundle.bundle_id, "landmarks_read": union, "encoding_width": bundle.streaming.encoding_width,
            "frame_encoder": new.frame_encoder, "window_head": new.window_head,
            "parity_max_abs_difference": bundle.manifest["streaming"]["parity_max_abs_difference"],
            **times, "speedup": round(times["old"]["median_ms"] / times["streaming"]["median_ms"], 2)}


def fuse_and_time(bundles: dict[str, Path], budget_s: float, workdir: Path,
                  progress: Callable[[str], None] = lambda message: None) -> list[dict[str, object]]:
    """One row per bundle (name -> folder); a bundle outside ``workdir`` is copied there before fusing."""
    import shutil

    rows = []
    for name, path in bundles.items():
        progress(f"streaming: fuse and time {name}")
        if workdir not in path.parents:
            copy = workdir / f"fused-{path.name}"
            shutil.copytree(path, copy, dirs_exist_ok=True)
            path = copy
        if load_bundle(path).streaming is None:
            write_pair(path)
        rows.append({"name": name, **time_bundle(path, budget_s)})
    return rows


def write(out: Path, result: dict, machine_line: str) -> list[Path]:
    """streaming_classifier.{json,md,png}."""
    mediapipe = result["mediapipe_detect_ms"]
    lines = [
        "# Classification per frame: six per-emotion models against the fused streaming pair",
        "",
        f"{result['date']}, `{result['command']}`{' (quick mode: not for comparison)' if result['quick'] else ''}.",
        "",
        machine_line,
        "",
        "Per frame, batch 1, one ONNX Runtime thread, timed call by call after a warm-up for "
        f"{result['budget_s']:g} s per cell. old: `EmotionClassifier.classify` on one window (six sessions, "
        "every frame's convolution and LSTM input projection recomputed for each window it is in). streaming: "
        "`StreamingClassifier.encode` of the new frame + `classify` of the window of cached encodings (each "
        "by its ONNX Runtime session or its compiled kernel, whichever the classifier found the faster when it "
        "loaded: the frame encoder and head columns; edgeemo.sparse_encoder, edgeemo.compiled_head). "
        f"Graphs: {result['graphs']}; untrained weights except the default bundle. MediaPipe's face mesh in the "
        f"same run: {mediapipe:.3f} ms per frame (median).",
        "",
        "| bundle | old median ms | old p99 ms | streaming median ms | streaming p99 ms | frame encoder | encoder ms | "
        "head | head ms | speed-up | streaming / MediaPipe | parity |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['name']} | {row['old']['median_ms']:.3f} | {row['old']['p99_ms']:.3f} | "
            f"{row['streaming']['median_ms']:.3f} | {row['streaming']['p99_ms']:.3f} | "
            f"{row['frame_encoder']} | {row['encoder']['median_ms']:.3f} | "
            f"{row['window_head']} | {row['head']['median_ms']:.3f} | {row['speedup']:.1f} x | "
            f"{row['streaming']['median_ms'] / mediapipe:.3f} | {row['parity_max_abs_difference']:.1e} |")
    lines += ["", "parity: the largest |pair - six models| over the real-face windows `edgeemo fuse` checks "
              "(London dev neutral -> smiling onsets, holds and offsets).", ""]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{NAME}.json", result)
    atomic_write_text(out / f"{NAME}.md", "\n".join(lines))
    paths = [out / f"{NAME}.json", out / f"{NAME}.md"]
    return paths + [_plot(out / f"{NAME}.png", result)]


def _plot(path: Path, result: dict) -> Path:
    import matplotlib  # mediapipe depends on it: present on every install

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["old"]["median_ms"] for r in rows], 0.4, label="six per-emotion models")
    ax.bar(x + 0.2, [r["streaming"]["median_ms"] for r in rows], 0.4, label="streaming pair (encoder + head)")
    ax.axhline(result["mediapipe_detect_ms"], color="black", linestyle="--", label="MediaPipe face mesh")
    ax.axhline(0.15 * result["mediapipe_detect_ms"], color="grey", linestyle=":", label="0.15 x MediaPipe")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=20)
    ax.set_ylabel("ms per frame, all six emotions")
    ax.set_title(f"Classification per frame, batch 1, one thread\n{result['machine']['cpu']}")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
