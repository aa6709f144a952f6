"""The explainability and landmark-selection part of ``edgeemo report RUN`` (offline.report.report calls it).

From the run folder only (no dataset, no TensorFlow):
  - accuracy against K, laid out like the paper's Tables 6-7 (an arch and protocol per table, emotions as
    rows, K as columns), with cost rows from RUN/select/cost.json; figures accuracy_vs_k_<protocol>.png, cost_vs_k.png
  - per arch with RUN/explain/<arch>/: the ranking's settings and completeness, the top landmarks, Fig. 3
    (landmarks_<arch>_<emotion>.png), the importance map (importance_<arch>.png), and Fig. 2 when
    ``edgeemo select`` has drawn it (ig_alpha_<arch>.png)
  - fidelity to the synthetic ground truth (RUN/explain/<arch>/fidelity.json)
A run with none of these (only K = 468, nothing explained) gets no section.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.face import N_LANDMARKS
from offline.explain.explain import explain_dir, ranking_path
from offline.explain.fidelity import METHODS, fidelity_path
from offline.explain.figures import (
    ARCH_NAMES, accuracy_vs_k_figure, cost_vs_k_figure, importance_figure, landmark_selection_figure,
)
from offline.explain.select import PAPER_KS, cost_path
from offline.training.evaluate import PROTOCOLS, mean_std
from offline.training.model import ARCHS
from offline.training.run_folder import Job, RunFolder

PROTOCOL_NAMES = {"paper": "paper protocol (onset windows only)", "streaming": "streaming protocol (every window)"}
TOP_LISTED = 10
METHOD_NAMES = {"ig": "IG", "saliency": "saliency", "random_draw": "random draw"}


class Section(NamedTuple):
    markdown: str  # to append to report.md ("" when there is nothing to say)
    figures: list[Path]  # PNGs written into RUN/report/


def explain_section(run: RunFolder, results: dict[Job, dict]) -> Section:
    """The section for the finished jobs ``results`` (as offline.report.report reads them) and the run's files."""
    lines: list[str] = []
    figures: list[Path] = []
    cost = run.read_json(cost_path(run))
    swept = [a for a in ARCHS if len({j.k for j in results if j.model == a}) > 1]  # archs trained at several K
    if swept or cost:
        part, drawn = _accuracy_by_k(run, results, swept, cost)
        lines += part
        figures += drawn
    for arch in ARCHS:
        if ranking_path(run, arch).is_file():
            part, drawn = _ranking(run, arch, results)
            lines += part
            figures += drawn
        fidelity = run.read_json(fidelity_path(run, arch))
        if fidelity is not None:
            lines += _fidelity(arch, fidelity)
    return Section("\n".join(lines), figures)


# ---- accuracy and cost against K


def _accuracy_by_k(run: RunFolder, results: dict[Job, dict], swept: list[str], cost: dict | None):
    archs = [a for a in ARCHS if any(j.model == a for j in results)]
    lines = [
        "## Accuracy against the number of landmarks K (the paper's Tables 6-7)", "",
        "Test accuracy, mean ± standard deviation over seeds; each K < 468 model sees its emotion's top K "
        "landmarks of the run's Integrated-Gradients ranking.",
    ]
    if cost:
        lines += ["", f"Cost rows (RUN/select/cost.json): all networks of a K together. FLOPs: {cost['flops_rule']}. "
                  f"Latency: {cost['latency']['what']}, over {cost['latency']['budget_s']:g} s on "
                  f"{_machine(cost['latency']['machine'])}."]
    lines.append("")
    curves = {}
    for protocol in PROTOCOLS:
        for arch in archs:
            cells = _cells(results, arch, protocol)
            ks = sorted({k for by_k in cells.values() for k in by_k}, reverse=True)
            rows = [[e.capitalize()] + [_mean_std(cells[e].get(k)) for k in ks] for e in EMOTIONS]
            rows += _cost_rows((cost or {}).get("archs", {}).get(arch, []), ks)
            lines += [f"### {ARCH_NAMES[arch]}, {PROTOCOL_NAMES[protocol]}", "",
                      *_table(["Emotion", *map(str, ks)], rows), ""]
            if arch in swept:
                points = {e: [(k, *s) for k in sorted(cells[e]) if (s := mean_std(cells[e][k]))] for e in EMOTIONS}
                curves.setdefault(protocol, {})[arch] = {e: p for e, p in points.items() if p}
    figures = [accuracy_vs_k_figure(curves[p], f"Test accuracy against K, {PROTOCOL_NAMES[p]}",
                                    run.report_dir / f"accuracy_vs_k_{p}.png") for p in PROTOCOLS if p in curves]
    if cost:
        figures.append(cost_vs_k_figure(cost, run.report_dir / "cost_vs_k.png"))
    lines += [f"![{f.stem}]({f.name})" for f in figures] + [""]
    return lines, figures


def _cells(results: dict[Job, dict], arch: str, protocol: str) -> dict[str, dict[int, list]]:
    """{emotion: {K: accuracy of each seed}}."""
    cells: dict[str, dict[int, list]] = {e: {} for e in EMOTIONS}
    for job, result in results.items():
        if job.model == arch:
            cells[job.emotion].setdefault(job.k, []).append(result["metrics"][protocol]["accuracy"])
    return cells


def _cost_rows(rows: list[dict], ks: list[int]) -> list[list[str]]:
    by_k = {row["k"]: row for row in rows}
    if not any(k in by_k for k in ks):
        return []

    def row(name: str, read) -> list[str]:
        return [name] + [read(by_k[k]) if k in by_k else "–" for k in ks]

    return [
        row("*Networks*", lambda r: str(len(r["emotions"]))),
        row("*Parameters*", lambda r: _count(r["parameters"])),
        row("*MFLOPs per window*", lambda r: f"{r['flops'] / 1e6:.1f}"),
        row("*Latency, ms (wall / CPU)*", lambda r: "{median_ms:.2f} / {cpu_median_ms:.2f}".format(**r["latency"])),
    ]


# ---- the ranking


def _ranking(run: RunFolder, arch: str, results: dict[Job, dict]):
    ranking = run.read_json(ranking_path(run, arch))
    name = ARCH_NAMES[arch]
    settings = ", ".join(f"{k} {v}" for k, v in ranking.get("settings", {}).items())
    lines = [f"## Landmark ranking, {name} (global Integrated Gradients, the paper's section 3.3)", "",
             f"From RUN/explain/{arch}/ranking.json" + (f" ({settings})" if settings else "") + ".", ""]
    completeness = _completeness(ranking)
    header = ["Emotion", f"top {TOP_LISTED} landmarks"]
    header += ["IG completeness error, median / worst (paths refined, most nodes)"] if completeness else []
    rows = [[e.capitalize(), " ".join(map(str, ranking["emotions"][e][:TOP_LISTED]))]
            + ([completeness[e]] if completeness else []) for e in EMOTIONS if e in ranking["emotions"]]
    lines += [*_table(header, rows), ""]
    ks = sorted(set(PAPER_KS) | {j.k for j in results if j.k < N_LANDMARKS}, reverse=True)
    figures = [
        landmark_selection_figure(ranking["emotions"][e], ks, f"{name}, {e}: the top K landmarks of the ranking",
                                  run.report_dir / f"landmarks_{arch}_{e}.png")
        for e in EMOTIONS if e in ranking["emotions"]
    ]
    scores = explain_dir(run, arch) / "scores.npz"
    if scores.is_file():
        with np.load(scores) as saved:
            evidence = ranking.get("settings", {}).get("score") == "evidence"  # older runs: the paper's |IG|
            what = ("mean IG per landmark (what its movement adds to P; below 0 drawn as 0)" if evidence
                    else "mean |IG| per landmark")
            figures.append(importance_figure(saved["scores"], f"{name}: {what}",
                                             run.report_dir / f"importance_{arch}.png"))
    alpha_curve = run.report_dir / f"ig_alpha_{arch}.png"  # drawn by edgeemo select, which has the data
    shown = figures + ([alpha_curve] if alpha_curve.is_file() else [])
    lines += [f"![{f.stem}]({f.name})" for f in shown] + [""]
    return lines, figures


def _completeness(ranking: dict) -> dict[str, str]:
    """Per emotion, relative completeness error over its samples and baselines, as ranking.json records it."""
    cells = {}
    for emotion, c in ranking.get("completeness", {}).items():
        refined = f" ({c['refined']} of {c['paths']} refined, up to {c['most_nodes']} nodes)" if "refined" in c else ""
        cells[emotion] = f"{c['median']:.1%} / {c['worst']:.1%}{refined}"
    return cells


# ---- fidelity


def _fidelity(arch: str, fidelity: dict) -> list[str]:
    lines = [
        f"## Fidelity of the {ARCH_NAMES[arch]} ranking to the synthetic ground truth", "",
        "Precision@K: the share of a ranking's top K among the landmarks the emotion's action units move "
        f"({Path(fidelity['truth_file']).name}). Saliency ranks by plain gradients |dF/dx| on the same models and "
        "samples as IG; the random ranking is one seeded draw, next to its expected value |truth| / 468; the best "
        "possible is min(1, |truth| / K).", "",
    ]
    emotions = list(fidelity["emotions"])
    for k in map(str, fidelity["ks"]):
        rows = [[e.capitalize(), str(fidelity["emotions"][e]["truth_landmarks"]), *_precisions(
            fidelity["emotions"][e]["precision"], k, "{:.3f}")] for e in emotions]
        rows.append(["**Mean**", "", *_precisions(fidelity["mean"], k, "**{:.3f}**")])
        header = ["Emotion", "truth landmarks", *(METHOD_NAMES[m] for m in METHODS), "random expected",
                  "best possible"]
        lines += [f"### K = {k}", "", *_table(header, rows), ""]
    return lines


def _precisions(precision: dict, k: str, form: str) -> list[str]:
    """The cells of one row: each method's precision at K, the random expectation, the best possible."""
    values = [precision[m][k] for m in METHODS] + [precision["random_expected"], precision["best_possible"][k]]
    return [form.format(v) for v in values]


# ---- formatting


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _mean_std(values: list | None) -> str:
    summary = mean_std(values or [])
    return "–" if summary is None else f"{summary[0]:.3f} ± {summary[1]:.3f}"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def _machine(machine: dict) -> str:
    load = machine.get("load_average")
    return f"{machine.get('cpu')}, {machine.get('cores_usable')} usable cores" + (f", load {load[0]}" if load else "")
