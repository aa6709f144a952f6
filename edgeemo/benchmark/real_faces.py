"""How the model bundle does on real faces: every London dev person, neutral -> smile -> smile held, and
neutral held, through the runtime's own per-frame path (MediaPipe tracking, normalisation, ring buffer,
ONNX models, fusion, ZeroMQ publishing).

    python -m edgeemo.benchmark.real_faces [--model BUNDLE] [--london-dev offline/resources/london-dev]
        [--out bench/results]   # writes real_faces.{json,md}

Clips are landmark-guided morphs between each person's two photos (offline.data.morph), 30 fps: 20 neutral
frames, a 15-frame onset, 45 frames of the smile held; and 45 frames of the neutral face alone.
The morphing is offline code (offline.data.morph: SciPy, the offline extra), imported only when it runs; the
photos are in a checkout only (the package leaves them out).
Photos: DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import platform
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgeemo.bundle import load_bundle
from edgeemo.commands.common import import_offline
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.io import atomic_write_json, atomic_write_text
from edgeemo.landmarker import FaceMeshLandmarker
from edgeemo.metrics import Metrics
from edgeemo.publisher import PredictionPublisher
from edgeemo.serve import StreamProcessor
from edgeemo.streaming import make_classifier

REPO = Path(__file__).resolve().parents[2]  # the checkout: the London dev photos are not installed
HOLD_NEUTRAL, ONSET, HOLD_SMILE = 20, 15, 45


def clip_labels(frames, bundle, classifier, publisher, metrics) -> list[str | None]:
    """The fused label published for each frame of one clip (None before the window is full)."""
    with FaceMeshLandmarker(static=False) as landmarker:
        processor = StreamProcessor("bench", bundle, classifier, landmarker, publisher, metrics.stream("bench"))
        processor.frame_interval_s = 1 / 30  # the clips are 30 fps video, read faster than filmed
        labels = []
        for frame in frames:
            payloads = processor.process(frame, 0.0, 0.0)  # one face in view: at most one prediction
            labels.append(payloads[0]["label"] if payloads else None)
    return labels


def evaluate(model: Path, london_dev: Path) -> dict:
    morph = import_offline("offline.data.morph")  # SciPy: the offline extra

    bundle = load_bundle(model)
    classifier = make_classifier(bundle)  # what serve runs: the fused pair when the bundle has one
    metrics = Metrics()
    ids = sorted({p.name.split("_")[0] for p in (london_dev / "images").glob("*_neutral.jpg")})
    people = []
    with PredictionPublisher("tcp://127.0.0.1:*") as publisher:
        for face_id in ids:
            neutral, pn = morph.load_face(london_dev, face_id, "neutral")
            smiling, ps = morph.load_face(london_dev, face_id, "smiling")
            smile = clip_labels(morph.smile_clip(neutral, pn, smiling, ps, HOLD_NEUTRAL, ONSET, HOLD_SMILE),
                                bundle, classifier, publisher, metrics)
            still = clip_labels([neutral] * HOLD_SMILE, bundle, classifier, publisher, metrics)
            held = [label for label in smile[HOLD_NEUTRAL + ONSET:] if label is not None]
            people.append({
                "face": face_id,
                "held_smile_happiness": held.count("happiness") / max(len(held), 1),
                "held_smile_labels": dict(Counter(held)),
                "neutral_labels": dict(Counter(label for label in still if label is not None)),
            })
    held_rate = np.array([p["held_smile_happiness"] for p in people])
    neutral_called_happy = sum("happiness" in p["neutral_labels"] for p in people)
    neutral_frames = Counter()
    for p in people:
        neutral_frames.update(p["neutral_labels"])
    return {
        "bundle": bundle.bundle_id,
        "people": len(people),
        "held_smile_frames_called_happiness_mean": float(held_rate.mean()),
        "people_with_held_smile_mostly_happiness": int((held_rate >= 0.5).sum()),
        "neutral_clips_ever_called_happiness": neutral_called_happy,
        "neutral_clip_labels": dict(neutral_frames),
        "per_person": people,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def markdown(result: dict) -> str:
    n = result["people"]
    return "\n".join([
        f"# The model bundle on real faces ({result['bundle']})", "",
        f"{n} London dev people (CC BY 4.0), clips morphed from each person's neutral and smiling photos.", "",
        "| measure | value |", "|---|---|",
        f"| held-smile frames called happiness (mean over people) | {result['held_smile_frames_called_happiness_mean']:.1%} |",
        f"| people whose held smile is happiness in most frames | {result['people_with_held_smile_mostly_happiness']} of {n} |",
        f"| neutral clips ever called happiness | {result['neutral_clips_ever_called_happiness']} of {n} |",
        f"| labels of neutral-clip frames | {result['neutral_clip_labels']} |", "",
        f"Measured {result['date']}; `python -m edgeemo.benchmark.real_faces` reproduces it.", "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--london-dev", type=Path, default=REPO / "offline" / "resources" / "london-dev")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="results folder (default bench/results, from the repository root)")
    args = parser.parse_args(argv)
    result = evaluate(args.model, args.london_dev)
    atomic_write_json(args.out / "real_faces.json", result)
    atomic_write_text(args.out / "real_faces.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
