"""How model bundles do on real faces: every London dev person at rest, smiling and releasing the smile, with
and without head turns, through the runtime's own per-frame path (MediaPipe tracking, normalisation, the
face's window, ONNX models, fusion, calibration where the bundle has it, ZeroMQ publishing).

    python -m edgeemo.benchmark.real_faces [--model BUNDLE ...] [--clips a,b,c,d,s] [--people N]
        [--london-dev offline/resources/london-dev] [--out bench/results]   # real_faces.{json,md,png}

Clips, 30 fps, landmark-guided morphs between each person's neutral and smiling photos (offline.data.morph):
  a  10 s at rest (the neutral photo held);
  b  2 s at rest, a 0.5 s smile onset, the smile held 5 s, a 0.5 s release, 2 s at rest;
  c  smiling from the first frame for 3 s, a release, 2 s at rest, then b;
  d  b with the head turning 0 -> +20 -> -20 -> 0 degrees (yaw, a sine over the clip), filmed from 3 face heights;
  s  10 s of the smiling photo held from the first frame (does a calibrated bundle keep the uncalibrated label?).
Every clip is a new processor and landmarker: a new face track, so a calibrated bundle starts it uncalibrated.
The truth per frame is the smile's state, transitions labelled by their midpoint; docs/benchmarks.md says
how each measure is taken. The morphing is offline code (SciPy, the offline extra), imported only when it
runs; the photos are in a checkout only (the package leaves them out). Frames are made once per person and
kept in memory while every bundle plays them; no video is written.
Photos: DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeemo.benchmark.report import record_or_exit
from edgeemo.bundle import load_bundle
from edgeemo.commands.common import import_offline
from edgeemo.errors import EdgeemoError
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.landmarker import FaceMeshLandmarker
from edgeemo.metrics import Metrics
from edgeemo.publisher import PredictionPublisher
from edgeemo.serve import StreamProcessor
from edgeemo.streaming import make_classifier

REPO = Path(__file__).resolve().parents[2]  # the checkout: the London dev photos are not installed
NAME = "real_faces"
FPS = 30
CLIPS = ("a", "b", "c", "d", "s")
TRANSITION = 15  # frames of a smile's onset or release (0.5 s)
TURN_DEG = 20.0
HAPPY, NEUTRAL = "happiness", "neutral"
WRONG_RUN_S = 0.5  # a wrong label held longer than this counts against the person
CALIBRATION_CHANGES_KEPT = 20  # per clip: the first changes of the payloads' "calibration" map


@dataclass(frozen=True)
class Timeline:
    """One clip type's script: the smile per frame (0 rest .. 1 the smiling photo), the head's yaw per frame,
    the transitions as frame ranges [start, end) and the measured smile's events (frame indices)."""

    kind: str
    alpha: np.ndarray
    yaw: np.ndarray
    transitions: tuple[tuple[int, int], ...] = ()
    events: dict[str, int] = field(default_factory=dict)  # onset_start/end, release_start/end (+ first_release_*)

    @property
    def frames(self) -> int:
        return len(self.alpha)

    @property
    def truth(self) -> list[str]:
        """Per frame: happiness where the smile is at least half way (a transition's midpoint frame, alpha 0.5,
        counts as the smile), else neutral."""
        return [HAPPY if a >= 0.5 - 1e-9 else NEUTRAL for a in self.alpha]


def _ramp(frames: int) -> np.ndarray:
    """An onset's smile amounts, easing in and out (as offline.data.morph.smile_clip's)."""
    return 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, frames + 2)[1:-1])


def _smile_and_release(rest_before: int = 2 * FPS, hold: int = 5 * FPS, rest_after: int = 2 * FPS, at: int = 0):
    """Clip b's alphas and its events, shifted to start at frame ``at``."""
    alpha = np.concatenate([np.zeros(rest_before), _ramp(TRANSITION), np.ones(hold), _ramp(TRANSITION)[::-1],
                            np.zeros(rest_after)])
    onset = at + rest_before
    release = onset + TRANSITION + hold
    events = {"onset_start": onset, "onset_end": onset + TRANSITION,
              "release_start": release, "release_end": release + TRANSITION}
    return alpha, events


def timeline(kind: str) -> Timeline:
    """The script of clip type ``kind`` (one of CLIPS)."""
    if kind == "a" or kind == "s":
        alpha = np.full(10 * FPS, 0.0 if kind == "a" else 1.0)
        return Timeline(kind, alpha, np.zeros(len(alpha)))
    if kind in ("b", "d"):
        alpha, events = _smile_and_release()
        yaw = TURN_DEG * np.sin(2 * np.pi * np.arange(len(alpha)) / len(alpha)) if kind == "d" else np.zeros(len(alpha))
        return Timeline(kind, alpha, yaw, ((events["onset_start"], events["onset_end"]),
                                           (events["release_start"], events["release_end"])), events)
    if kind == "c":
        first = np.concatenate([np.ones(3 * FPS), _ramp(TRANSITION)[::-1], np.zeros(2 * FPS)])
        alpha, events = _smile_and_release(at=len(first))
        events = {"first_release_start": 3 * FPS, "first_release_end": 3 * FPS + TRANSITION, **events}
        transitions = ((events["first_release_start"], events["first_release_end"]),
                       (events["onset_start"], events["onset_end"]), (events["release_start"], events["release_end"]))
        alpha = np.concatenate([first, alpha])
        return Timeline(kind, alpha, np.zeros(len(alpha)), transitions, events)
    raise EdgeemoError(f"--clips: unknown clip type {kind!r} (known: {','.join(CLIPS)})")


# --- measures: pure functions of one clip's labels (None: no prediction that frame) -----------------------


def excluded(line: Timeline, window_frames: int) -> np.ndarray:
    """Per frame: True where the window (the ``window_frames`` frames before it and the frame) holds a
    transition's frame; such frames see part of both states, so no label is right or wrong there."""
    mask = np.zeros(line.frames, bool)
    for start, end in line.transitions:
        mask[start:min(end + window_frames, line.frames)] = True
    return mask


def _judged(labels: list[str | None], mask: np.ndarray, start: int = 0, end: int | None = None) -> list[int]:
    end = len(labels) if end is None else end
    return [i for i in range(start, end) if labels[i] is not None and not mask[i]]


def share_right(labels: list[str | None], truth: list[str], mask: np.ndarray) -> tuple[int, int]:
    """(frames labelled right, frames judged): frames with a prediction outside ``mask``."""
    judged = _judged(labels, mask)
    return sum(labels[i] == truth[i] for i in judged), len(judged)


def longest_wrong_run(labels: list[str | None], truth: list[str], mask: np.ndarray) -> int:
    """The most consecutive judged frames labelled wrong; a frame without a prediction or in ``mask`` ends a run."""
    best = run = 0
    for i, label in enumerate(labels):
        run = run + 1 if label is not None and not mask[i] and label != truth[i] else 0
        best = max(best, run)
    return best


def time_to(labels: list[str | None], start: int, label: str) -> float | None:
    """Seconds from frame ``start`` to the first frame at or after it labelled ``label``; None: never."""
    for i in range(start, len(labels)):
        if labels[i] == label:
            return (i - start) / FPS
    return None


def held_share(labels: list[str | None], mask: np.ndarray, start: int, end: int, label: str = HAPPY) -> float | None:
    """Share of the judged frames in [start, end) labelled ``label``; None: none judged."""
    judged = _judged(labels, mask, start, end)
    return sum(labels[i] == label for i in judged) / len(judged) if judged else None


def measure_clip(line: Timeline, labels: list[str | None], window_frames: int) -> dict:
    """One person's measures on one clip."""
    truth, mask = line.truth, excluded(line, window_frames)
    right, judged = share_right(labels, truth, mask)
    predicted = [label for label in labels if label is not None]
    out = {"right": right, "judged": judged, "longest_wrong_run_s": longest_wrong_run(labels, truth, mask) / FPS,
           "ever_happiness": HAPPY in predicted, "labels": dict(Counter(predicted)),
           "end_label": predicted[-1] if predicted else None,
           "first_prediction_s": next((i / FPS for i, label in enumerate(labels) if label is not None), None)}
    ev = line.events
    if "onset_start" in ev:
        out["onset_to_happiness_s"] = time_to(labels, ev["onset_start"], HAPPY)
        out["release_to_neutral_s"] = time_to(labels, ev["release_end"], NEUTRAL)
        out["held_smile_happiness"] = held_share(labels, mask, ev["onset_end"], ev["release_start"])
    if line.kind in ("c", "s"):
        out["first_frame_to_happiness_s"] = time_to(labels, 0, HAPPY)
    if line.kind == "c":
        out["first_smile_happiness"] = held_share(labels, mask, 0, ev["first_release_start"])
        out["first_release_to_neutral_s"] = time_to(labels, ev["first_release_end"], NEUTRAL)
    return out


def _stats(values: list[float | None]) -> dict:
    """Median and max over people of a time; ``never``: people for whom it never came."""
    seen = [v for v in values if v is not None]
    return {"median_s": float(np.median(seen)) if seen else None, "max_s": max(seen) if seen else None,
            "never": len(values) - len(seen)}


def summarise(kind: str, people: list[dict], window_s: float) -> dict:
    """One clip type's measures over people (``people``: measure_clip's dicts), the issue's floors included."""
    n = len(people)
    most = math.ceil(0.96 * n)  # "48 of 50"
    right, judged = sum(p["right"] for p in people), sum(p["judged"] for p in people)
    runs = [p["longest_wrong_run_s"] for p in people]
    out = {"people": n, "share_right": right / judged if judged else None, "frames_judged": judged,
           "people_ever_wrong": sum(r > 0 for r in runs), "people_wrong_over_0.5s": sum(r > WRONG_RUN_S for r in runs),
           "longest_wrong_run_s": {"median": float(np.median(runs)) if runs else None, "max": max(runs, default=None)},
           "ever_happiness": sum(p["ever_happiness"] for p in people),
           "end_labels": dict(Counter(p["end_label"] for p in people))}
    floors = {}
    if kind == "a":
        out["resting_frames_neutral"] = out["share_right"]
        floors["a_resting_frames_neutral_ge_98pct"] = out["share_right"] is not None and out["share_right"] >= 0.98
        floors["a_no_rest_clip_ever_happiness"] = out["ever_happiness"] == 0
        floors["a_at_most_2_of_50_people_any_emotion_over_0.5s"] = out["people_wrong_over_0.5s"] <= math.floor(2 * n / 50)
    if "onset_to_happiness_s" in (people[0] if people else {}):
        held = [p["held_smile_happiness"] for p in people]
        release = [p["release_to_neutral_s"] for p in people]
        out["onset_to_happiness"] = _stats([p["onset_to_happiness_s"] for p in people])
        out["release_to_neutral"] = _stats(release)
        out["people_held_smile_ge_95pct"] = sum(h is not None and h >= 0.95 for h in held)
        out["people_back_to_neutral_within_1s"] = sum(r is not None and r <= 1.0 for r in release)
        if kind in ("b", "c"):
            floors[f"{kind}_held_smile_ge_95pct_for_48_of_50"] = out["people_held_smile_ge_95pct"] >= most
            floors[f"{kind}_back_to_neutral_within_1s_for_48_of_50"] = out["people_back_to_neutral_within_1s"] >= most
    if kind in ("c", "s"):
        first = [p["first_frame_to_happiness_s"] for p in people]
        out["first_frame_to_happiness"] = _stats(first)
        # The window has to fill before any label: "within 1 s" counts from the first prediction.
        out["people_first_happiness_within_1s_of_first_prediction"] = sum(
            f is not None and p["first_prediction_s"] is not None and f - p["first_prediction_s"] <= 1.0 + 1e-9
            for f, p in zip(first, people))
        out["people_first_happiness_within_1s_of_first_frame"] = sum(f is not None and f <= 1.0 + 1e-9 for f in first)
    if kind == "c":
        floors["c_first_smile_happiness_within_1s_for_48_of_50"] = \
            out["people_first_happiness_within_1s_of_first_prediction"] >= most
    out["floors"] = floors
    out["window_s"] = window_s
    return out


# --- running clips through the runtime --------------------------------------------------------------------


def _calibration_record(payloads: list[dict | None]) -> dict | None:
    """The payloads' "calibration" maps (runtime with calibration): the first, the last, the first changes."""
    maps = [(i, p.get("calibration")) for i, p in enumerate(payloads) if p is not None and "calibration" in p]
    if not maps:
        return None
    changes, last = [], object()
    for i, value in maps:
        if value != last:
            changes.append([i, value])
            last = value
    return {"first": maps[0][1], "last": maps[-1][1], "changes": changes[:CALIBRATION_CHANGES_KEPT],
            "change_count": len(changes)}


def play_clip(frames, bundle, classifier, publisher, metrics, progress=None) -> tuple[list[str | None], dict | None]:
    """The fused label published for each frame of one clip (None: no prediction) and its calibration record.

    A new processor and landmarker: a new face track. Frames are given their video time (index / 30 fps)."""
    payloads: list[dict | None] = []
    with FaceMeshLandmarker(static=False) as landmarker:
        processor = StreamProcessor("bench", bundle, classifier, landmarker, publisher, metrics.stream("bench"))
        processor.frame_interval_s = 1 / FPS  # the clips are 30 fps video, read faster than filmed
        for index, frame in enumerate(frames):
            published = processor.process(frame, index / FPS, 0.0)  # one face in view: at most one prediction
            payloads.append(published[0] if published else None)
            if progress is not None:
                progress.update(1)
    return [p["label"] if p is not None else None for p in payloads], _calibration_record(payloads)


def london_dev_ids(london_dev: Path) -> list[str]:
    ids = sorted({p.name.split("_")[0] for p in (london_dev / "images").glob("*_neutral.jpg")})
    if not ids:
        raise EdgeemoError(f"--london-dev {london_dev}: no images/*_neutral.jpg")
    return ids


def evaluate(models: list[Path], london_dev: Path, kinds: list[str], people: int | None = None) -> dict:
    morph = import_offline("offline.data.morph")  # SciPy: the offline extra
    bundles = [load_bundle(model) for model in models]
    classifiers = [make_classifier(bundle) for bundle in bundles]  # what serve runs
    lines = {kind: timeline(kind) for kind in kinds}
    ids = london_dev_ids(london_dev)[:people]
    metrics = Metrics()
    per = [{kind: [] for kind in kinds} for _ in bundles]  # [bundle][kind] -> per-person dicts
    total = len(ids) * len(bundles) * sum(line.frames for line in lines.values())
    with PredictionPublisher("tcp://127.0.0.1:*") as publisher, \
            tqdm(total=total, desc="real faces", unit="frame", file=sys.stderr, dynamic_ncols=True) as bar:
        for face_id in ids:
            neutral, pn = morph.load_face(london_dev, face_id, "neutral", depth=True)
            smiling, ps = morph.load_face(london_dev, face_id, "smiling", depth=True)
            # This person's frames, made once and held in memory while every bundle plays them.
            clips = {kind: morph.clip_frames(neutral, pn, smiling, ps, line.alpha, line.yaw)
                     for kind, line in lines.items()}
            for b, (bundle, classifier) in enumerate(zip(bundles, classifiers)):
                window_frames = round(bundle.window_s * FPS)
                for kind, line in lines.items():
                    labels, calibration = play_clip(clips[kind], bundle, classifier, publisher, metrics, bar)
                    measured = measure_clip(line, labels, window_frames)
                    per[b][kind].append({"face": face_id, **measured, "calibration": calibration,
                                         "timeline": _runs(labels)})
            del clips
    results = []
    for bundle, model, clips in zip(bundles, models, per):
        results.append({"bundle": bundle.bundle_id, "path": _shown(model), "calibrated": bool(bundle.calibrated),
                        "window_s": bundle.window_s,
                        "clips": {kind: summarise(kind, clips[kind], bundle.window_s) for kind in kinds},
                        "per_person": clips})
    return {"people": len(ids), "clips": {kind: {"frames": line.frames, "events": line.events,
                                                  "transitions": [list(t) for t in line.transitions]}
                                           for kind, line in lines.items()},
            "fps": FPS, "bundles": results, "still_smile_vs_absolute": _still_vs_absolute(results),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _shown(path: Path) -> str:
    """A bundle's path as the record shows it: from the checkout's root where it lies inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _runs(labels: list[str | None]) -> list[list]:
    """A clip's labels as [first frame, label] runs (the JSON's timeline, and the figure's)."""
    runs: list[list] = []
    for i, label in enumerate(labels):
        if not runs or runs[-1][1] != label:
            runs.append([i, label])
    return runs


def _still_vs_absolute(results: list[dict]) -> dict | None:
    """Clip s: people whose end label under each bundle is the first absolute bundle's end label."""
    absolute = next((r for r in results if not r["calibrated"]), None)
    if absolute is None or "s" not in absolute["clips"]:
        return None
    reference = {p["face"]: p["end_label"] for p in absolute["per_person"]["s"]}
    return {"reference": absolute["bundle"],
            "same_end_label": {r["bundle"]: sum(reference[p["face"]] == p["end_label"] for p in r["per_person"]["s"])
                               for r in results}}


# --- writing -----------------------------------------------------------------------------------------------

ROWS = (  # (clip types, label, key, format)
    ("abcds", "frames labelled right (judged frames)", "share_right", "pct"),
    ("abcds", "people ever labelled wrongly", "people_ever_wrong", "n"),
    ("abcds", "people wrong longer than 0.5 s", "people_wrong_over_0.5s", "n"),
    ("abcds", "longest wrong run, median / max s", "longest_wrong_run_s", "run"),
    ("as", "clips ever called happiness", "ever_happiness", "n"),
    ("bcd", "onset start -> happiness, median / max s", "onset_to_happiness", "time"),
    ("bcd", "release end -> neutral, median / max s", "release_to_neutral", "time"),
    ("bcd", "people with the held smile happiness >= 95 %", "people_held_smile_ge_95pct", "n"),
    ("bcd", "people back to neutral within 1 s of release", "people_back_to_neutral_within_1s", "n"),
    ("cs", "first frame -> happiness, median / max s", "first_frame_to_happiness", "time"),
    ("cs", "people: happiness within 1 s of the first prediction", "people_first_happiness_within_1s_of_first_prediction", "n"),
    ("s", "end labels", "end_labels", "dict"),
)


def _cell(value, fmt: str, n: int) -> str:
    if value is None:
        return "-"
    if fmt == "pct":
        return f"{value:.1%}"
    if fmt == "n":
        return f"{value} of {n}"
    if fmt == "run":
        return f"{value['median']:.2f} / {value['max']:.2f}" if value["max"] is not None else "-"
    if fmt == "time":
        text = "-" if value["median_s"] is None else f"{value['median_s']:.2f} / {value['max_s']:.2f}"
        return text + (f" ({value['never']} never)" if value["never"] else "")
    return ", ".join(f"{k} {v}" for k, v in sorted(value.items(), key=lambda kv: -kv[1]))


def markdown(result: dict) -> str:
    bundles, n = result["bundles"], result["people"]
    kinds = list(result["clips"])
    lines = [f"# Model bundles on real faces ({n} London dev people)", "",
             f"{n} London dev people (CC BY 4.0), clips morphed from each person's neutral and smiling photos, "
             "30 fps, through serve's per-frame path; every clip a new face track. Clips: a rest 10 s; b rest 2 s, "
             "smile onset 0.5 s, held 5 s, release 0.5 s, rest 2 s; c smiling from the first frame 3 s, release, "
             "rest 2 s, then b; d b with the head turning 0 -> +20 -> -20 -> 0 degrees; s the smiling photo "
             "held 10 s. Frames whose window spans a transition are not judged (docs/benchmarks.md).", "",
             "| clip | measure | " + " | ".join(f"{b['bundle']}{' (calibrated)' if b['calibrated'] else ''}"
                                              for b in bundles) + " |",
             "|---|---|" + "---|" * len(bundles)]
    for kind in kinds:
        for kinds_of_row, label, key, fmt in ROWS:
            if kind in kinds_of_row:
                lines.append(f"| {kind} | {label} | " + " | ".join(
                    _cell(b["clips"][kind].get(key), fmt, n) for b in bundles) + " |")
    lines += ["", "The issue's floors (counts scaled to the people played):", "",
              "| floor | " + " | ".join(b["bundle"] for b in bundles) + " |", "|---|" + "---|" * len(bundles)]
    floors = [f for kind in kinds for f in bundles[0]["clips"][kind]["floors"]]
    for f in floors:
        kind = f.split("_")[0]
        lines.append(f"| {f} | " + " | ".join("yes" if b["clips"][kind]["floors"][f] else "**no**" for b in bundles) + " |")
    still = result.get("still_smile_vs_absolute")
    if still:
        lines += ["", f"Clip s, end label the same as {still['reference']}'s (the uncalibrated label kept): " +
                  ", ".join(f"{k} {v} of {n}" for k, v in still["same_end_label"].items()) + "."]
    if result.get("note"):
        lines += ["", f"Note: {result['note']}."]
    lines += ["", f"Measured {result['date']}; `python -m edgeemo.benchmark.real_faces "
              + " ".join(f"--model {b['path']}" for b in bundles) + f" --clips {','.join(kinds)}"
              + (f" --people {n}" if n != 50 else "") + "` reproduces it.", ""]
    return "\n".join(lines)


LABEL_COLOURS = {"neutral": "#d9d9d9", "happiness": "#f2b134", "sadness": "#4a7bb7", "surprise": "#9b59b6",
                 "fear": "#2ca25f", "disgust": "#8c564b", "anger": "#d62728", None: "white"}


def figure(result: dict, path: Path, people_shown: int = 3) -> None:
    """Per clip type and bundle: the share right and the people wrong > 0.5 s; a label timeline for a few people."""
    import matplotlib  # mediapipe depends on it: present on every install

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bundles, kinds = result["bundles"], list(result["clips"])
    shown = next((k for k in ("c", "b", "d", "a", "s") if k in kinds), kinds[0])
    # The first person, then those wrong longest under the first bundle: what goes wrong, not only what works.
    played = bundles[0]["per_person"][shown]
    worst = sorted(played[1:], key=lambda p: -p["longest_wrong_run_s"])
    faces = [p["face"] for p in (played[:1] + worst)[:people_shown]]
    fig = plt.figure(figsize=(11, 4.2 + 0.35 * len(faces) * (len(bundles) + 1)))
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 0.6 * len(faces) * (len(bundles) + 1)])
    x = np.arange(len(kinds))
    width = 0.8 / len(bundles)
    for col, (key, title) in enumerate((("share_right", "judged frames labelled right"),
                                        ("people_wrong_over_0.5s", "people wrong longer than 0.5 s"))):
        ax = fig.add_subplot(grid[0, col])
        for b, bundle in enumerate(bundles):
            values = [bundle["clips"][k][key] or 0 for k in kinds]
            ax.bar(x + (b - (len(bundles) - 1) / 2) * width, [v * 100 for v in values] if col == 0 else values,
                   width, label=bundle["bundle"])
        ax.set_xticks(x, kinds)
        ax.set_xlabel("clip type")
        ax.set_ylabel("%" if col == 0 else f"people of {result['people']}")
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        if col == 0:
            ax.set_ylim(0, 100)
            ax.legend(fontsize=7, loc="lower left")
    ax = fig.add_subplot(grid[1, :])
    frames = result["clips"][shown]["frames"]
    rows, names = [], []
    for face in faces:
        rows.append(("truth", None))
        names.append(f"{face} truth")
        for bundle in bundles:
            rows.append(("labels", next(p for p in bundle["per_person"][shown] if p["face"] == face)["timeline"]))
            names.append(f"{face} {bundle['bundle']}")
    truth = timeline(shown).truth
    for y, (what, runs) in enumerate(rows):
        if what == "truth":
            runs = _runs(truth)
        ends = [start for start, _ in runs[1:]] + [frames]
        for (start, label), end in zip(runs, ends):
            ax.barh(y, (end - start) / FPS, left=start / FPS, color=LABEL_COLOURS.get(label, "black"), height=0.8)
    for name, frame in result["clips"][shown]["events"].items():
        ax.axvline(frame / FPS, color="black", lw=0.5, ls=":")
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, frames / FPS)
    ax.set_xlabel(f"clip {shown}, seconds (dotted: onset and release start / end; white: no prediction)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for k, c in LABEL_COLOURS.items() if k]
    ax.legend(handles, [k for k in LABEL_COLOURS if k], ncol=7, fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.35))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _clip_list(text: str) -> list[str]:
    try:
        return clip_types(text)
    except EdgeemoError as exc:  # argparse prints it on one line, with the usage
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--clips: ")) from None


def clip_types(text: str) -> list[str]:
    """The clip types of a --clips value, in the order given, each once."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    for kind in kinds:
        if kind not in CLIPS:
            raise EdgeemoError(f"--clips: unknown clip type {kind!r} (known: {','.join(CLIPS)})")
    if not kinds:
        raise EdgeemoError("--clips: no clip type given")
    return list(dict.fromkeys(kinds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append",
                        help="a model bundle; repeat to compare bundles side by side (default: the shipped one)")
    parser.add_argument("--clips", type=_clip_list, default=list(CLIPS), help="clip types, e.g. a,b,c,d,s (default: all)")
    parser.add_argument("--people", type=int, default=None, help="the first N London dev people (default: all 50)")
    parser.add_argument("--london-dev", type=Path, default=REPO / "offline" / "resources" / "london-dev")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="results folder (default bench/results, from the repository root)")
    args = parser.parse_args(argv)
    if args.people is not None and args.people < 1:
        parser.error(f"--people {args.people}: must be at least 1")
    record_or_exit(NAME, args.out, lambda: evaluate(args.model or [DEFAULT_BUNDLE], args.london_dev, args.clips,
                                                    args.people), markdown, figure)


if __name__ == "__main__":
    main()
