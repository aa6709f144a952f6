"""Several faces per frame: what ``edgeemo serve`` spends per frame with 1, 2 and 4 faces in view.

    python -m edgeemo.benchmark.faces [--out bench/results] [--frames 300]

Frames: London dev neutral photos (CC BY 4.0; offline/resources/london-dev) on a 960x960 canvas, one per
quarter, the other quarters grey, so every case converts the same pixels. Each case drives a processor
over the same still frame (MediaPipe tracking, windows full, a prediction per face per frame), in blocks
taken in turn so that other load on the machine falls on every case alike, on one core:

- ``before``: the one-face pipeline as serve ran it before several faces (``_OneFaceProcessor``, its
  ``process`` copied from edgeemo.serve at 8660aad, statuses left out): one face mesh, one window.
- ``--max-faces 1``: today's ``StreamProcessor`` (tracker, FaceTrack, head pose) with a one-face mesh.
- ``--max-faces 4``: the default: a one-face mesh and the probe while one face is in view (edgeemo.multi_face).
- ``mesh for 4``: MediaPipe asked for 4 faces throughout, without the probe: why the probe is there.
- ``serve now``: ``--max-faces 4`` with the classifier serve picks for the bundle (the fused streaming pair,
  edgeemo.streaming): what a user's serve spends now against ``before``, what it spent then.

The other cases share the six per-emotion models, so that they differ only in the face handling.

It also times the tracker alone (``FaceTracker.update``) against norfair's, where norfair is importable.
Writes multi_face.json, .md and .png into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import cv2
import numpy as np
from prometheus_client import CollectorRegistry

from edgeemo.benchmark.report import machine_line, pyplot, write_record
from edgeemo.benchmark.timing import load_average, machine, now, one_core, summary_ms
from edgeemo.bundle import load_bundle
from edgeemo.classifier import EmotionClassifier
from edgeemo.info import ABSOLUTE_BUNDLE, DEFAULT_BUNDLE
from edgeemo.metrics import Metrics
from edgeemo.normalize import normalize_landmarks
from edgeemo.publisher import PredictionPublisher
from edgeemo.ringbuffer import RingBuffer
from edgeemo.streaming import make_classifier

NAME = "multi_face"
LONDON_DEV = Path(__file__).resolve().parents[2] / "offline" / "resources" / "london-dev"
PEOPLE = ("001", "002", "004", "005")
FACE_COUNTS = (1, 2, 4)
CASES = ("before", "--max-faces 1", "--max-faces 4", "mesh for 4", "serve now")
BLOCK = 50  # frames per turn
WARMUP = 80  # frames before timing: windows full, the probe has switched meshes


class _OneFaceProcessor:
    """The one-face pipeline as serve ran it before several faces (the baseline): its per-frame work with a
    face in view, metrics included; the status events and missed-frame branch left out (never taken here)."""

    def __init__(self, bundle, classifier, landmarker, publisher, metrics) -> None:
        self.bundle, self.classifier, self.landmarker, self.publisher = bundle, classifier, landmarker, publisher
        self.metrics = metrics
        self.union = bundle.landmarks_union
        self.buffer = RingBuffer.for_window(bundle.frames, bundle.frame_stride, len(self.union))
        self._window = np.zeros((bundle.frames, 2, len(self.union)), np.float32)
        self._rgb = None
        self._k = {m.emotion: len(m.landmarks) for m in bundle.models}

    def process(self, frame: np.ndarray, captured_at: float, read_s: float) -> list[dict]:
        started = time.monotonic()
        self.metrics.frame()
        if self._rgb is None or self._rgb.shape != frame.shape:
            self._rgb = np.empty_like(frame)
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=self._rgb)
        points = self.landmarker.detect(self._rgb)
        if points is None:
            return []
        self.metrics.face_found()
        self.buffer.append(normalize_landmarks(points)[self.union])
        landmarks_s = time.monotonic() - started
        if not self.buffer.is_full(self.bundle.frames, self.bundle.frame_stride):
            return []
        self.buffer.window(self.bundle.frame_stride, self.bundle.frames, self._window)
        classify_started = time.monotonic()
        scores = self.classifier.classify(self._window)
        classify_s = time.monotonic() - classify_started
        label = self.classifier.label(scores)
        payload = self.publisher.publish_prediction(
            "bench", captured_at=captured_at, face_found=True, scores=scores.tolist(), label=label,
            landmarks=len(self.union), k=self._k, bundle=self.bundle.bundle_id,
            latency={"capture": read_s, "wait": started - captured_at, "landmarks": landmarks_s,
                     "classify": classify_s})
        self.metrics.prediction(label)
        self.metrics.observe_latency(payload["latency"])
        return [payload]


def compose(faces: int) -> np.ndarray:
    """BGR 960x960: the first ``faces`` London dev people, one per quarter (row by row), grey elsewhere."""
    from offline.data.morph import load_face

    canvas = np.full((960, 960, 3), 127, np.uint8)
    for i, person in enumerate(PEOPLE[:faces]):
        photo, _ = load_face(LONDON_DEV, person, "neutral")
        y, x = divmod(i, 2)
        canvas[480 * y:480 * (y + 1), 480 * x:480 * (x + 1)] = photo
    return canvas


def _processor(case: str, bundle, classifier, publisher, enter):
    from edgeemo.landmarker import FaceMeshLandmarker
    from edgeemo.multi_face import MultiFaceLandmarker
    from edgeemo.serve import StreamProcessor

    metrics = Metrics(CollectorRegistry()).stream("bench")
    if case == "before":
        return _OneFaceProcessor(bundle, classifier, enter(FaceMeshLandmarker(static=False)), publisher, metrics)
    landmarker = {"--max-faces 1": lambda: MultiFaceLandmarker(1), "--max-faces 4": lambda: MultiFaceLandmarker(4),
                  "mesh for 4": lambda: FaceMeshLandmarker(static=False, max_faces=4),
                  "serve now": lambda: MultiFaceLandmarker(4)}[case]()
    if case == "serve now":  # the shipped default bundle as serve runs it: calibrated, its fused pair
        bundle = load_bundle(DEFAULT_BUNDLE)
        classifier = make_classifier(bundle, threads=1)
    processor = StreamProcessor("bench", bundle, classifier, enter(landmarker), publisher, metrics)
    processor.frame_interval_s = 1 / 30
    return processor


def run(frames: int) -> dict:
    bundle = load_bundle(ABSOLUTE_BUNDLE)  # the one-face pipeline before, and the per-emotion models
    rows = []
    with PredictionPublisher("tcp://127.0.0.1:*") as publisher, contextlib.ExitStack() as stack, one_core() as cpu:
        classifier = EmotionClassifier(bundle, threads=1)
        for faces in FACE_COUNTS:
            frame = compose(faces)
            processors = {case: _processor(case, bundle, classifier, publisher, stack.enter_context)
                          for case in CASES}
            timed = {case: {"wall": [], "cpu": [], "predictions": 0, "classify": [], "landmarks": []}
                     for case in CASES}
            for processor in processors.values():
                for _ in range(WARMUP):
                    processor.process(frame, time.monotonic(), 0.0)
            while len(timed[CASES[0]]["wall"]) < frames:
                for case, processor in processors.items():
                    record = timed[case]
                    for _ in range(BLOCK):
                        c0, t0 = time.process_time(), time.perf_counter()
                        payloads = processor.process(frame, time.monotonic(), 0.0)
                        record["wall"].append(time.perf_counter() - t0)
                        record["cpu"].append(time.process_time() - c0)
                        record["predictions"] += len(payloads)
                        record["classify"] += [p["latency"]["classify"] for p in payloads]
                        record["landmarks"] += [p["latency"]["landmarks"] for p in payloads[:1]]
            for case, record in timed.items():
                n = len(record["wall"])
                rows.append({
                    "faces": faces, "case": case, "frame": summary_ms(np.asarray(record["wall"])),
                    "frame_cpu_median_ms": round(float(np.median(record["cpu"])) * 1000, 4),
                    "predictions_per_frame": round(record["predictions"] / n, 3),
                    "landmarks_median_ms": _median_ms(record["landmarks"]),
                    "classify_per_face_median_ms": _median_ms(record["classify"]),
                })
        tracker = time_trackers()
    return {"benchmark": "multi-face", "date": now(), "machine": machine(), "pinned_cpu": cpu,
            "load_average_after": load_average(), "bundle": bundle.bundle_id, "frame_size": [960, 960],
            "frames_per_case": frames, "rows": rows, "tracker": tracker}


def _median_ms(seconds: list[float]) -> float | None:
    return round(float(np.median(seconds)) * 1000, 4) if seconds else None


def time_trackers(calls: int = 2000) -> dict:
    """Microseconds per frame of FaceTracker.update, and of norfair's Tracker.update with the same cost, for
    1, 2 and 4 faces moving a little each frame (real London dev landmarks)."""
    from edgeemo.tracking import SHAPE_UNIT, FaceTracker, face_box

    with np.load(LONDON_DEV / "landmarks.npz") as data:
        people = data["landmarks"][data["expression"] == "neutral"][:4, :, :2] * 480
    result: dict = {"ours_us": {}, "norfair_us": {}, "norfair": None}
    scenes = {faces: [people[i] + [500.0 * (i % 2), 500.0 * (i // 2)] for i in range(faces)] for faces in FACE_COUNTS}
    for faces, points in scenes.items():
        shapes = [normalize_landmarks(p) for p in points]
        tracker = FaceTracker()
        started = time.perf_counter()
        for step in range(calls):
            tracker.update([face_box(p + step % 7) for p in points], shapes)
        result["ours_us"][faces] = round((time.perf_counter() - started) / calls * 1e6, 1)
    try:
        import norfair
    except ImportError:
        return result
    result["norfair"] = getattr(norfair, "__version__", "?")

    def distance(detection, tracked) -> float:
        move = np.linalg.norm(detection.points.mean(0) - tracked.estimate.mean(0))
        width = max(float(np.ptp(tracked.estimate[:, 0])), 1.0)
        change = np.sqrt(((detection.data - tracked.last_detection.data) ** 2).sum(-1)).mean() / SHAPE_UNIT
        return float(move / width + change)

    for faces, points in scenes.items():
        shapes = [normalize_landmarks(p) for p in points]
        tracker = norfair.Tracker(distance_function=distance, distance_threshold=3.0, hit_counter_max=15,
                                  initialization_delay=0)
        started = time.perf_counter()
        for step in range(calls):
            tracker.update([norfair.Detection(np.reshape(face_box(p + step % 7), (2, 2)), data=s)
                            for p, s in zip(points, shapes)])
        result["norfair_us"][faces] = round((time.perf_counter() - started) / calls * 1e6, 1)
    return result


def write(out: Path, result: dict, command: str) -> list[Path]:
    result["command"] = command
    lines = [
        "# Several faces per frame", "",
        f"`{command}`, {result['date']}. Bundle `{result['bundle']}`; a 960x960 frame with 1, 2 or 4 London dev",
        "faces (CC BY 4.0), the cases in turn over the same frame; milliseconds per frame from the decoded frame to",
        "every prediction published (`before`: serve's one-face pipeline before several faces; `serve now`:",
        "`--max-faces 4` with the fused streaming pair serve picks; the other cases: the six per-emotion models).", "",
        machine_line(result), "",
        "| faces | case | per frame, median ms | p99 ms | CPU median ms | predictions per frame | landmarks ms | "
        "classify per face ms |", "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['faces']} | {row['case']} | {row['frame']['median_ms']:.2f} | "
                     f"{row['frame']['p99_ms']:.2f} | {row['frame_cpu_median_ms']:.2f} | "
                     f"{row['predictions_per_frame']:.2f} | {_ms(row['landmarks_median_ms'])} | "
                     f"{_ms(row['classify_per_face_median_ms'])} |")
    tracker = result["tracker"]
    lines += ["", "The tracker alone, microseconds per frame (associating every face found):", "",
              "| faces | edgeemo.tracking | norfair |", "|---|---|---|"]
    for faces in FACE_COUNTS:
        theirs = tracker["norfair_us"].get(faces)
        lines.append(f"| {faces} | {tracker['ours_us'][faces]} | {theirs if theirs is not None else 'not installed'} |")
    if tracker["norfair"]:
        lines.append(f"\nnorfair {tracker['norfair']} with the same cost, its Kalman filter on the box corners.")
    paths = write_record(out, NAME, result, "\n".join(lines) + "\n")
    paths.append(_plot(out / f"{NAME}.png", result))
    return paths


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _plot(path: Path, result: dict) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    width = 0.16
    for k, case in enumerate(CASES):
        rows = [row for row in result["rows"] if row["case"] == case]
        xs = [FACE_COUNTS.index(row["faces"]) + (k - (len(CASES) - 1) / 2) * width for row in rows]
        ax.bar(xs, [row["frame"]["median_ms"] for row in rows], width, label=case)
    ax.set_xticks(range(len(FACE_COUNTS)), [f"{n} face{'s' if n > 1 else ''}" for n in FACE_COUNTS])
    ax.set_ylabel("ms per frame (median)")
    ax.set_title("edgeemo serve per frame, 960x960 frame, one core")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--frames", type=int, default=300, help="timed frames per case and face count")
    args = parser.parse_args(argv)
    command = "python -m edgeemo.benchmark.faces " + shlex.join(sys.argv[1:] if argv is None else argv)
    for path in write(args.out, run(args.frames), command.strip()):
        print(path)


if __name__ == "__main__":
    main()
