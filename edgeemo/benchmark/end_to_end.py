"""``edgeemo serve``'s per-frame work on a real face video, stage by stage, and MediaPipe alone as its floor.

Drives ``edgeemo.serve.StreamProcessor`` (what ``serve`` runs per frame) on every frame of the video,
decoded as it goes (unpaced, so nothing waits for a frame period), and reads the stage latencies from the
prediction messages it publishes. The video is played again until the time budget is spent, the face
tracker and ring buffer carrying on across the loop point as they would on a camera.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from prometheus_client import CollectorRegistry

from edgeemo.benchmark.timing import measure, summary_ms
from edgeemo.bundle import load_bundle
from edgeemo.messages import LATENCY_KEYS
from edgeemo.metrics import Metrics
from edgeemo.publisher import PredictionPublisher
from edgeemo.sources import VideoFileSource
from edgeemo.streaming import StreamingClassifier, make_classifier

STREAM = "bench"


def run_pipeline(bundle_path: Path, video: Path, budget_s: float, *, streaming: bool | None = None,
                 explain_every: int | None = None) -> dict[str, object]:
    """Per-stage latency (ms) over every prediction, and frames per second over every frame (with or
    without a prediction) from decoding to publishing. ``streaming``: the fused pair (True), the six
    per-emotion models (False), or what serve picks for the bundle (None); ``explain_every``: as serve's
    --explain-every (None: no --explain)."""
    from edgeemo.landmarker import FaceMeshLandmarker
    from edgeemo.serve import ServeOptions, StreamProcessor, explanation_factory

    bundle = load_bundle(bundle_path)
    if streaming is False and bundle.calibrated:
        # A calibrated bundle is served by its pair only: the per-emotion path runs its absolute fallback's six
        # models (the same architecture and K, so the same cost).
        bundle = bundle.uncalibrated
    stages: dict[str, list[float]] = {key: [] for key in LATENCY_KEYS}
    frames = passes = 0
    explanation_ms: list[float] = []
    # No subscriber: a message is built, packed and handed to ZeroMQ as in serve, then dropped.
    with PredictionPublisher("tcp://127.0.0.1:*") as publisher, FaceMeshLandmarker(static=False) as landmarker:
        classifier = make_classifier(bundle, threads=1, streaming=streaming)
        explain = explanation_factory(ServeOptions(explain=explain_every is not None,
                                                   explain_every=explain_every or 1), classifier)
        processor = StreamProcessor(STREAM, bundle, classifier, landmarker, publisher,
                                    Metrics(CollectorRegistry()).stream(STREAM), explain=explain)
        started, cpu_started = time.perf_counter(), time.process_time()
        while passes == 0 or time.perf_counter() - started < budget_s:
            with VideoFileSource(video, pace=False) as source:
                # Frames come faster than filmed: windows are timed in video time, as serve --fast does.
                processor.frame_interval_s = 1.0 / source.fps
                while True:
                    read_started = time.monotonic()
                    item = source.read()
                    if item is None:
                        break
                    payloads = processor.process(item[0], item[1], item[1] - read_started)
                    frames += 1
                    for payload in payloads:
                        for key in LATENCY_KEYS:
                            stages[key].append(payload["latency"][key])
                        if "explanation" in payload:
                            explanation_ms.append(payload["explanation"]["seconds"] * 1000)
            passes += 1
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "stages": {key: summary_ms(np.asarray(values)) for key, values in stages.items() if values},
        "frames": frames, "predictions": len(stages["total"]), "passes": passes, "wall_s": round(wall_s, 3),
        "frames_per_second": round(frames / wall_s, 2), "cpu_s": round(cpu_s, 3),
        "frames_per_cpu_second": round(frames / cpu_s, 2),
        "bundle": bundle.bundle_id, "landmarks_read": int(len(bundle.landmarks_union)),
        "window": {"frames": bundle.frames, "stride": bundle.frame_stride},
        "classifier": "streaming pair" if isinstance(classifier, StreamingClassifier) else "six per-emotion models",
        "explanations": summary_ms(np.asarray(explanation_ms) / 1000) if explanation_ms else None,
    }


def run_landmarker(video: Path, budget_s: float) -> dict[str, object]:
    """MediaPipe's face mesh alone (tracking mode) on the video's frames, decoded and converted to RGB
    beforehand: the least any frame can cost."""
    from edgeemo.landmarker import FaceMeshLandmarker

    rgb = []
    with VideoFileSource(video, pace=False) as source:
        while (item := source.read()) is not None:
            rgb.append(cv2.cvtColor(item[0], cv2.COLOR_BGR2RGB))
    index = 0
    found = 0

    with FaceMeshLandmarker(static=False) as landmarker:
        def detect() -> None:
            nonlocal index, found
            found += landmarker.detect(rgb[index % len(rgb)]) is not None
            index += 1

        times = measure(detect, budget_s, warmup=5, min_calls=len(rgb))
    return {"detect": times.summary(), "frames_per_second": round(len(times.wall) / float(times.wall.sum()), 2),
            "frames_per_cpu_second": round(len(times.cpu) / float(times.cpu.sum()), 2),
            "face_found_share": round(found / index, 3), "frame_size": list(rgb[0].shape[:2])}


def run_alternating(bundle_path: Path, video: Path, blocks: int, pipeline_s: float,
                    floor_s: float) -> dict[str, object]:
    """The pipeline against MediaPipe alone block by block: ``run_pipeline`` for ``pipeline_s``, then
    ``run_landmarker`` for ``floor_s``, ``blocks`` times in turn, so that both see the same minutes of a shared
    machine (one long run of each can land one in a quiet minute and the other in a busy one). Per block: both
    medians and p99s and their ratios; over the blocks: the median ratios, and their range."""
    rows = []
    for _ in range(blocks):
        total = run_pipeline(bundle_path, video, pipeline_s)["stages"]["total"]
        detect = run_landmarker(video, floor_s)["detect"]
        rows.append({"total_median_ms": total["median_ms"], "total_p99_ms": total["p99_ms"],
                     "mediapipe_median_ms": detect["median_ms"], "mediapipe_p99_ms": detect["p99_ms"],
                     "p50_ratio": round(total["median_ms"] / detect["median_ms"], 4),
                     "p99_ratio": round(total["p99_ms"] / detect["p99_ms"], 4)})
    summary = {f"{q}_ratio_{stat}": round(float(fn([row[f"{q}_ratio"] for row in rows])), 4)
               for q in ("p50", "p99") for stat, fn in (("median", np.median), ("min", np.min), ("max", np.max))}
    return {"blocks": rows, "pipeline_s": pipeline_s, "mediapipe_s": floor_s, **summary}
