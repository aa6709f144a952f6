"""Live explanations measured: completeness, agreement with the truth and the offline ranking, and cost.

    PYTHONPATH=. python -m edgeemo.benchmark.explanations [--data synth.npz] [--out bench/results]
    PYTHONPATH=. python -m edgeemo.benchmark.explanations --models calibrated [--model BUNDLE] [--action-units ict]

1. completeness on real-face windows (London dev faces, neutral -> smiling onsets, holds and offsets;
   edgeemo.fuse.real_face_windows): |residual| / |F(x) - F(b)|, median and max, top emotion and happiness;
   and what a resting real face's explanation looks like against the canonical baseline.
2. agreement on synthetic people (``edgeemo data synth`` with another seed than the default bundle's, made
   here unless ``--data`` names one, with its truth file): per emotion, over its correctly detected windows,
   how often the top region is one of the emotion's true regions (a region is true when at least
   TRUE_SHARE of its mesh landmarks are among the truth file's moved landmarks of the emotion), with the
   canonical baseline and with each synthetic person's own rest (the mean of their neutral windows); and
   the Spearman correlation between the regions' summed live values and the offline IG ranking's regions
   (how many of the bundle's K IG-selected landmarks, the ranking's top K, fall in each region: the IG
   scores themselves are not shipped in a bundle).
3. cost at K = 64 (the default bundle), ONNX Runtime on one thread, this process pinned to one core: one
   explanation; the head's time against the number of windows it scores (exact Shapley over R regions
   scores 2^R; permutation-sampled Shapley with M permutations M * R + 1); and the pipeline (MediaPipe to
   publish, edgeemo.benchmark.end_to_end) on the demo clip without and with --explain on every prediction.
Writes explanations.json and explanations.md. ``--models calibrated`` measures 2. alone on the default
bundle's calibrated models (what a face is explained by once its rest is known), on rest-relative synthetic
people (``edgeemo data synth --representation rest-relative/v1``, the runtime's rest estimator on each), and
writes explanations_calibrated.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgeemo.attribution import Explainer
from edgeemo.benchmark.timing import machine, measure, one_core, summary_ms
from edgeemo.bundle import load_bundle
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.info import ABSOLUTE_BUNDLE, DEFAULT_BUNDLE
from edgeemo.io import atomic_write_json, atomic_write_text
from edgeemo.regions import REGIONS, region_of_landmark
from edgeemo.streaming import StreamingClassifier

TRUE_SHARE = 0.25
SYNTH_SEED, SYNTH_SEQUENCES, SYNTH_SUBJECTS = 7, 120, 24
RAMPS = ("slow onset", "fast onset", "step", "held smile", "offset")  # real_face_windows' order per face
DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "smile.mp4"


def relative_residual(e: dict) -> float:
    change = abs(e["score"] - e["baseline_score"])
    return abs(e["residual"]) / change if change > 1e-3 else 0.0  # below 0.001 the ratio measures nothing


def completeness(classifier: StreamingClassifier, explainer: Explainer) -> dict:
    from edgeemo.fuse import real_face_windows

    windows = real_face_windows(classifier.bundle.frames)[:, :, classifier.union]
    relative, absolute, smile = [], [], None
    for i, faces in enumerate(windows):
        scores = classifier.classify(classifier.encode_frames(faces))
        for emotion in (None, "happiness"):
            e = explainer.explain(faces, scores, emotion)
            relative.append(relative_residual(e))
            absolute.append(abs(e["residual"]))
        if smile is None and RAMPS[i % len(RAMPS)] == "held smile":
            smile = explainer.explain(faces, scores, "happiness", landmarks=True)
    # a resting real face: each face's neutral frame held still, against the canonical baseline
    resting = windows[::len(RAMPS), :1].repeat(classifier.bundle.frames, axis=1)
    rest_scores = np.stack([classifier.classify(classifier.encode_frames(f)) for f in resting])
    rest_sizes = [sum(abs(v) for v in explainer.explain(f, s)["regions"].values()) for f, s in zip(resting, rest_scores)]
    return {
        "windows": len(windows), "explanations": len(relative),
        "relative_residual": {"median": float(np.median(relative)), "max": float(np.max(relative)),
                              "p99": float(np.percentile(relative, 99))},
        "absolute_residual": {"median": float(np.median(absolute)), "max": float(np.max(absolute))},
        "first_held_smile": smile,
        "resting_face": {"faces": len(resting), "top_score_median": float(np.median(rest_scores.max(axis=1))),
                         "top_score_max": float(rest_scores.max()),
                         "sum_abs_regions_median": float(np.median(rest_sizes)),
                         "sum_abs_regions_max": float(np.max(rest_sizes))},
    }


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho with average ranks for ties (scipy is not part of the edge install)."""
    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for value in np.unique(x):  # ties share their mean rank
            r[x == value] = r[x == value].mean()
        return r
    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def synth_data(workdir: Path, representation: str = "absolute", action_units: str = "hand") -> Path:
    out = workdir / "synth.npz"
    subprocess.run([sys.executable, "-m", "edgeemo", "data", "synth", "--out", str(out), "--seed", str(SYNTH_SEED),
                    "--sequences", str(SYNTH_SEQUENCES), "--subjects", str(SYNTH_SUBJECTS),
                    "--representation", representation, "--action-units", action_units],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def agreement(classifier: StreamingClassifier, data: Path) -> dict:
    bundle = classifier.bundle
    with np.load(data) as d:
        x = d["X"].transpose(0, 1, 3, 2)[:, :, classifier.union]
        y, subject, segment, meta = d["y"], d["subject"], d["segment"], json.loads(str(d["meta"]))
    truth = json.loads((data.parent / meta["truth"]).read_text(encoding="utf-8"))
    owner = region_of_landmark()
    sizes = np.bincount(owner, minlength=len(REGIONS))
    rests = {s: x[(subject == s) & (segment == "neutral")].reshape(-1, x.shape[2], 2).mean(axis=0)
             for s in np.unique(subject)}
    explainer = Explainer(classifier)
    rows = {}
    for e, name in enumerate(EMOTIONS):
        moved = np.bincount(owner[truth["emotions"][name]["landmarks"]], minlength=len(REGIONS))
        true = [REGIONS[r] for r in range(len(REGIONS)) if moved[r] >= TRUE_SHARE * sizes[r]]
        touched = [REGIONS[r] for r in range(len(REGIONS)) if moved[r] > 0]
        ig = np.bincount(owner[bundle.models[e].landmarks], minlength=len(REGIONS))
        row = {"true_regions": true, "windows": int((y == e).sum())}
        for mode in ("canonical", "personal"):
            hits, lax, tops, summed = [], [], {}, dict.fromkeys(REGIONS, 0.0)
            detected = 0
            for i in np.flatnonzero(y == e):
                scores = classifier.classify(classifier.encode_frames(x[i]))
                explainer.set_rest(rests[subject[i]] if mode == "personal" else None)
                regions, _, _ = explainer.region_values(x[i], e)
                for key, value in regions.items():
                    summed[key] += value
                if classifier.label(scores) != name:
                    continue
                detected += 1
                top = max(regions, key=regions.get)
                tops[top] = tops.get(top, 0) + 1
                hits.append(top in true)
                lax.append(top in touched)
            row[mode] = {
                "detected": detected, "top_region_precision": float(np.mean(hits)) if hits else None,
                "top_region_touched": float(np.mean(lax)) if lax else None, "top_regions": tops,
                "spearman_vs_ig_selection": spearman([summed[r] for r in REGIONS], ig),
                "summed": {r: round(v, 4) for r, v in summed.items()},
            }
        row["ig_selected_per_region"] = dict(zip(REGIONS, ig.tolist()))
        rows[name] = row
    pooled = {mode: float(np.sum([r[mode]["top_region_precision"] * r[mode]["detected"] for r in rows.values()])
                          / np.sum([r[mode]["detected"] for r in rows.values()])) for mode in ("canonical", "personal")}
    return {"data": str(data), "seed": meta.get("seed"), "windows": int(len(y)), "rule": (
        f"a region is one of the emotion's true regions when at least {TRUE_SHARE:.0%} of its mesh landmarks are "
        "among the truth file's moved landmarks of the emotion"), "emotions": rows, "pooled_precision": pooled}


def cost(classifier: StreamingClassifier, budget_s: float) -> dict:
    from edgeemo.fuse import real_face_windows

    explainer = Explainer(classifier)
    faces = real_face_windows(classifier.bundle.frames, 4)[3][:, classifier.union]
    scores = classifier.classify(classifier.encode_frames(faces))
    per_emotion = {}
    for e, name in enumerate(EMOTIONS):
        explainer.part(e)
        per_emotion[name] = {"regions": len(explainer.part(e).names),
                             **measure(lambda: explainer.explain(faces, scores, name), budget_s).summary()}
    head = explainer.part(EMOTIONS.index("happiness")).head
    width = head.get_inputs()[0].shape[2]
    curve = {}
    for batch in (1, 16, 64, 128, 256, 512, 1024):
        windows = np.random.default_rng(0).normal(size=(batch, classifier.bundle.frames, width)).astype(np.float32)
        curve[batch] = measure(lambda: head.run(None, {"encodings": windows}), budget_s / 4).summary()["median_ms"]
    return {"per_explanation": per_emotion, "head_ms_by_windows": curve,
            "classify_ms": measure(lambda: classifier.classify(classifier.encode_frames(faces)), budget_s).summary()}


def pipeline(budget_s: float) -> dict:
    from edgeemo.benchmark.end_to_end import run_pipeline

    return {"without": run_pipeline(DEFAULT_BUNDLE, DEMO, budget_s),
            "explain_every_prediction": run_pipeline(DEFAULT_BUNDLE, DEMO, budget_s, explain_every=1)}


def agreement_lines(a: dict) -> list[str]:
    """The agreement section: per emotion, top-region precision and rank correlation with IG's selection."""
    lines = [f"## Agreement (synthetic people, seed {a['seed']}, {a['windows']} windows)", "", a["rule"] + ".", "",
             "| emotion | true regions | detected | top-region precision (canonical) | (personal rest) | "
             "top region touched by the emotion (canonical) | Spearman vs IG selection (canonical) | (personal) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in a["emotions"].items():
        lines.append(f"| {name} | {', '.join(row['true_regions'])} | {row['canonical']['detected']} / {row['windows']} | "
                     f"{row['canonical']['top_region_precision']:.3f} | {row['personal']['top_region_precision']:.3f} | "
                     f"{row['canonical']['top_region_touched']:.3f} | "
                     f"{row['canonical']['spearman_vs_ig_selection']:.2f} | {row['personal']['spearman_vs_ig_selection']:.2f} |")
    lines.append("")
    lines.append("Top regions of correctly detected windows (canonical): " + "; ".join(
        f"{name} " + ", ".join(f"{region} {n}" for region, n in sorted(row["canonical"]["top_regions"].items(),
                                                                        key=lambda item: -item[1]))
        for name, row in a["emotions"].items()) + ".")
    return lines + ["", f"Pooled over emotions: canonical {a['pooled_precision']['canonical']:.3f}, personal rest "
                        f"{a['pooled_precision']['personal']:.3f}.", ""]


def write(out: Path, result: dict) -> list[Path]:
    c, a, k, p = result["completeness"], result["agreement"], result["cost"], result["pipeline"]
    lines = ["# Live explanations", "", f"{result['date']}, `{result['command']}`; {result['machine_summary']}.", "",
             "## Completeness (real London dev windows, canonical baseline)", "",
             f"{c['explanations']} explanations of {c['windows']} windows: |residual| / |F(x) - F(b)| median "
             f"{c['relative_residual']['median']:.1e}, 99th percentile {c['relative_residual']['p99']:.1e}, max "
             f"{c['relative_residual']['max']:.1e} (absolute: median {c['absolute_residual']['median']:.1e}, max "
             f"{c['absolute_residual']['max']:.1e}).", "",
             f"Resting real faces (each face's neutral frame held, {c['resting_face']['faces']} faces): top score "
             f"median {c['resting_face']['top_score_median']:.3f} (max {c['resting_face']['top_score_max']:.3f}), "
             f"sum of |region values| median {c['resting_face']['sum_abs_regions_median']:.3f} "
             f"(max {c['resting_face']['sum_abs_regions_max']:.3f}).", "",
             "A held real smile (London face 001): `" + json.dumps(
                 {key: c["first_held_smile"][key] for key in ("emotion", "score", "baseline_score", "residual")})
             + "`, regions " + ", ".join(f"{n} {v:+.3f}" for n, v in sorted(
                 c["first_held_smile"]["regions"].items(), key=lambda item: -abs(item[1]))), "",
             *agreement_lines(a),
             "## Cost (default bundle, K = 64, one thread, one core)", "",
             "Wall time is what a caller waits; CPU time is what this process spent, which other processes "
             "competing for the core do not inflate as much.", "",
             "| emotion | regions R | windows 2^R | median ms | p99 ms | CPU median ms |", "|---|---|---|---|---|---|"]
    for name, row in k["per_explanation"].items():
        lines.append(f"| {name} | {row['regions']} | {2 ** row['regions']} | {row['median_ms']:.2f} | {row['p99_ms']:.2f} "
                     f"| {row['cpu_median_ms']:.2f} |")
    lines += ["", f"Classifying the window (encoder + fused head): {k['classify_ms']['median_ms']:.2f} ms median.", "",
              "Head (one emotion) time against windows scored: " + ", ".join(
                  f"{n}: {ms:.2f} ms" for n, ms in k["head_ms_by_windows"].items()), "",
              "| pipeline (demo clip, MediaPipe to publish) | frames/s | frames per CPU second | total median ms |",
              "|---|---|---|---|"]
    for name, row in p.items():
        lines.append(f"| {name} | {row['frames_per_second']} | {row['frames_per_cpu_second']} | "
                     f"{row['stages']['total']['median_ms']:.1f} |")
    explained = p["explain_every_prediction"]["explanations"]
    if explained:
        lines += ["", f"In the pipeline, {explained['n']} explanations took {explained['median_ms']:.2f} ms median "
                      f"({explained['p99_ms']:.2f} ms 99th percentile), as their `seconds` key reports."]
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "explanations.json", out / "explanations.md"]
    atomic_write_json(paths[0], result)
    atomic_write_text(paths[1], "\n".join(lines) + "\n")
    return paths


def _stamp(argv: list[str] | None) -> dict[str, str]:
    """When and with what command the benchmark ran."""
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m edgeemo.benchmark.explanations " + " ".join(
                argv if argv is not None else sys.argv[1:])}


def write_calibrated(out: Path, data: Path | None, argv: list[str] | None, model: Path = DEFAULT_BUNDLE,
                     action_units: str = "hand") -> list[Path]:
    """The agreement of a calibrated bundle's live explanations on rest-relative synthetic people, where a
    window at rest is the canonical face: the canonical baseline is each person's own rest. ``action_units``:
    those of the synthetic people made when ``data`` is None (a bundle trained on ICT units: ict)."""
    bundle = load_bundle(model)
    if not bundle.calibrated:
        raise EdgeemoError(f"--model {model}: not a calibrated bundle (--models calibrated measures one)")
    with tempfile.TemporaryDirectory() as workdir:
        data = data or synth_data(Path(workdir), representation="rest-relative/v1", action_units=action_units)
        result = {**_stamp(argv), "machine": machine(), "bundle": bundle.bundle_id,
                  "representation": bundle.representation, "agreement": agreement(StreamingClassifier(bundle, threads=1), data)}
    lines = ["# Live explanations of the calibrated models", "",
             f"{result['date']}, `{result['command']}`; bundle `{bundle.bundle_id}` (its calibrated models, "
             f"{bundle.representation}). Completeness and cost: explanations.md (the same explainer and graphs).", "",
             *agreement_lines(result["agreement"])]
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "explanations_calibrated.json", out / "explanations_calibrated.md"]
    atomic_write_json(paths[0], result)
    atomic_write_text(paths[1], "\n".join(lines))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="synthetic dataset with its truth file (default: made)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per timed measurement")
    parser.add_argument("--pipeline-budget", type=float, default=20.0, help="seconds per pipeline run")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--models", choices=("absolute", "calibrated"), default="absolute",
                        help="calibrated: the agreement alone, on a calibrated bundle's calibrated models and "
                             "rest-relative synthetic people (explanations_calibrated.*)")
    parser.add_argument("--model", type=Path, default=DEFAULT_BUNDLE,
                        help="with --models calibrated: the calibrated bundle (default: the shipped one)")
    parser.add_argument("--action-units", choices=("hand", "ict"), default="hand",
                        help="with --models calibrated: the made synthetic people's action units (docs/action-units.md)")
    args = parser.parse_args(argv)
    if args.models == "calibrated":
        try:
            paths = write_calibrated(args.out, args.data, argv, args.model, args.action_units)
        except EdgeemoError as exc:
            print(f"explanations: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        for path in paths:
            print(path)
        return
    # Agreement and cost on the absolute fallback: the synthetic test windows and their truth are absolute faces.
    bundle = load_bundle(ABSOLUTE_BUNDLE)
    m = machine()
    with tempfile.TemporaryDirectory() as workdir, one_core() as cpu:
        classifier = StreamingClassifier(bundle, threads=1)
        data = args.data or synth_data(Path(workdir))
        result = {
            **_stamp(argv), "machine": m, "pinned_cpu": cpu, "bundle": bundle.bundle_id,
            "completeness": completeness(classifier, Explainer(classifier)),
            "agreement": agreement(classifier, data),
            "cost": cost(classifier, args.budget),
            "pipeline": pipeline(args.pipeline_budget),
        }
    result["machine_summary"] = (f"{m['cpu']}, {m['cores']} cores, load average before {m['load_average']}, "
                                 f"after {[round(v, 2) for v in os.getloadavg()]}; pinned to CPU {cpu}")
    for path in write(args.out, result):
        print(path)


if __name__ == "__main__":
    main()
