"""Figures of the explainability step and of the landmark selection (PNG, matplotlib Figure objects, no pyplot).

  landmark_selection_figure  the paper's Fig. 3: the canonical face mesh, the top K of a ranking marked, a panel per K
  importance_figure          each emotion's landmark scores as colours on the face
  alpha_curve_figure         the paper's Fig. 2: P(emotion) along the IG path from a baseline to a sample
  accuracy_vs_k_figure       test accuracy (mean ± std over seeds) against K, a line per emotion
  cost_vs_k_figure           parameters, FLOPs and ONNX latency against K
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS, face_template
from edgeemo.io import atomic_path
from offline.data.dataset import LandmarkDataset
from offline.data.splits import Split
from offline.explain.explain import neutral_baselines
from offline.export.export import best_job
from offline.training.run_folder import RunFolder

ARCH_NAMES = {"t-emo": "T-EMO", "r-emo": "R-EMO"}
ALPHA_POINTS = 101
IG_STEPS = 64


def save_png(figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight")
    return Path(path)


def landmark_selection_figure(order: np.ndarray, ks, title: str, path: Path) -> Path:
    """Fig. 3: all 468 points grey; then one panel per K with the first K of ``order`` (best first) circled."""
    from matplotlib.figure import Figure

    face = face_template().template
    panels = [N_LANDMARKS, *[k for k in ks if k != N_LANDMARKS]]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(3.2 * columns, 3.6 * rows), layout="constrained")
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axes, k in zip(grid, panels):
        axes.scatter(face[:, 0], face[:, 1], s=3, c="0.6", linewidths=0)
        if k != N_LANDMARKS:
            top = face[np.asarray(order)[:k]]
            axes.scatter(top[:, 0], top[:, 1], s=22, facecolors="none", edgecolors="tab:blue", linewidths=0.9)
        axes.set_title("all 468 landmarks" if k == N_LANDMARKS else f"top {k}", fontsize=10)
    for axes in grid:
        _face_axes(axes)
    figure.suptitle(title)
    return save_png(figure, path)


def importance_figure(scores: np.ndarray, title: str, path: Path) -> Path:
    """Scores [6, 468] (EMOTIONS order) as colours on the canonical face, a panel per emotion, each scaled
    to its own largest score; the most important points are drawn last, on top."""
    from matplotlib.figure import Figure

    face = face_template().template
    figure = Figure(figsize=(10.5, 7.8), layout="constrained")
    grid = figure.subplots(2, 3)
    for axes, emotion, row in zip(grid.flat, EMOTIONS, np.asarray(scores, dtype=np.float64)):
        share = row / row.max() if row.max() > 0 else row
        order = np.argsort(share)
        image = axes.scatter(face[order, 0], face[order, 1], c=share[order], s=10, cmap="viridis", vmin=0, vmax=1,
                             linewidths=0)
        axes.set_title(emotion.capitalize(), fontsize=10)
        _face_axes(axes)
    figure.colorbar(image, ax=grid, shrink=0.6, label="landmark score / the emotion's largest")
    figure.suptitle(title)
    return save_png(figure, path)


def alpha_curve_figure(model, sample: np.ndarray, baselines: dict[str, np.ndarray], *, emotion: str, title: str,
                       path: Path) -> Path:
    """Fig. 2: P(emotion) at x' + a (x - x') for a in [0, 1], ``sample`` x [P, 2, L] and one curve per
    ``baselines`` entry (label: x' [P, 2, L]); each label notes IG's completeness on its path (sum of the
    attributions against F(x) - F(x'))."""
    from matplotlib.figure import Figure

    from offline.explain.integrated_gradients import IntegratedGradients

    ig = IntegratedGradients(model)
    x = np.asarray(sample, dtype=np.float32)[None, ..., None]
    alphas = np.linspace(0.0, 1.0, ALPHA_POINTS, dtype=np.float32)
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    for label, baseline in baselines.items():
        x0 = np.asarray(baseline, dtype=np.float32)[None, ..., None]
        result = ig.attribute(x, x0, steps=IG_STEPS)
        axes.plot(alphas, ig.probability(x0 + alphas[:, None, None, None, None] * (x - x0)),
                  label=f"from {label}: Σ IG = {result.attributions.sum():.3f}, "
                        f"F(x) − F(x′) = {result.f_input[0] - result.f_baseline[0]:.3f}")
    axes.set_xlabel(f"α  (0: baseline, 1: the {emotion} sample; m = {IG_STEPS}, {result.rule})")
    axes.set_ylabel(f"P({emotion})")
    axes.set_xlim(0, 1)
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title(title, fontsize=10)
    return save_png(figure, path)


def draw_alpha_curve(run: RunFolder, dataset: LandmarkDataset, arch: str, emotion: str = "surprise",
                     baseline_emotion: str = "sadness") -> Path:
    """Fig. 2 of a run: the emotion's 468-landmark model (best validation seed) and its typical training onset
    (the medoid), from the paper's baseline (the baseline emotion's medoid onset) and from its own rest
    (its first frame held: explain's neutral baseline)."""
    job = best_job(run, arch, N_LANDMARKS, emotion)
    train = Split.from_json(run.read_json(run.split_path(job.seed))).train
    onsets = train[dataset.segment[train] == "onset"]
    sample, baseline = (_medoid(dataset.X[onsets[dataset.y[onsets] == EMOTIONS.index(e)]], e, job.seed)
                        for e in (emotion, baseline_emotion))
    title = (f"{ARCH_NAMES[arch]} {emotion} model (seed {job.seed}): P({emotion}) along the IG path")
    return alpha_curve_figure(run.load_model(job), sample,
                              {f"a {baseline_emotion} onset": baseline,
                               "its own rest": neutral_baselines(sample[None])[0]},
                              emotion=emotion, title=title, path=run.report_dir / f"ig_alpha_{arch}.png")


def accuracy_vs_k_figure(curves: dict[str, dict[str, list[tuple[int, float, float]]]], title: str,
                         path: Path) -> Path:
    """``curves[arch][emotion]``: (K, mean, std) points; a panel per arch, a line with error bars per emotion."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2 * len(curves), 4.2), layout="constrained")
    grid = np.atleast_1d(figure.subplots(1, len(curves), sharey=True, squeeze=False)).ravel()
    for axes, (arch, by_emotion) in zip(grid, curves.items()):
        for i, (emotion, points) in enumerate(by_emotion.items()):
            k, mean, std = np.array(points, dtype=np.float64).T
            dodge = 2.0 ** (0.04 * (i - (len(by_emotion) - 1) / 2))  # side by side, so error bars stay apart
            axes.errorbar(k * dodge, mean, yerr=std, marker="o", ms=3, capsize=2, lw=1, label=emotion.capitalize())
        _k_axis(axes, sorted({p[0] for points in by_emotion.values() for p in points}))
        axes.set_title(ARCH_NAMES[arch], fontsize=10)
        axes.grid(alpha=0.3)
    grid[0].set_ylabel("test accuracy (mean ± std over seeds)")
    grid[-1].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    return save_png(figure, path)


def cost_vs_k_figure(cost: dict, path: Path) -> Path:
    """Parameters, MFLOPs and latency of the six networks of each K (cost.json), a line per arch."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure = Figure(figsize=(13, 3.8), layout="constrained")
    grid = figure.subplots(1, 3)
    panels = (("parameters", lambda r: r["parameters"], "parameters"),
              ("MFLOPs per window", lambda r: r["flops"] / 1e6, "MFLOPs"),
              ("ONNX latency per window (median, 1 thread)", lambda r: r["latency"]["median_ms"], "ms"))
    archs = [a for a in ARCH_NAMES if a in cost["archs"]]
    for axes, (title, read, unit) in zip(grid, panels):
        for arch in archs:
            rows = cost["archs"][arch]
            (line,) = axes.plot([r["k"] for r in rows], [read(r) for r in rows], marker="o", ms=3,
                                label=ARCH_NAMES[arch])
            if unit == "ms":  # CPU time too: what the networks cost without other processes' load
                axes.plot([r["k"] for r in rows], [r["latency"]["cpu_median_ms"] for r in rows], ls="--", lw=1,
                          color=line.get_color(), label=f"{ARCH_NAMES[arch]}, CPU time")
        _k_axis(axes, sorted({r["k"] for rows in cost["archs"].values() for r in rows}))
        axes.set_title(title, fontsize=10)
        axes.set_ylabel(unit)
        axes.set_yscale("log")
        axes.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.grid(alpha=0.3)
    grid[0].legend(fontsize=8)
    grid[2].legend(fontsize=8)
    figure.suptitle("Cost of the emotion networks against the number of landmarks K")
    return save_png(figure, path)


def _face_axes(axes) -> None:
    axes.set_aspect("equal")
    axes.invert_yaxis()  # the template's y grows downwards, as in images
    axes.axis("off")


def _k_axis(axes, ks: list[int]) -> None:
    axes.set_xscale("log", base=2)
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.minorticks_off()
    axes.set_xlabel("landmarks per model, K")


def _medoid(x: np.ndarray, emotion: str, seed: int) -> np.ndarray:
    """The window closest to the windows' mean (explain's "typical sequence")."""
    if not len(x):
        raise EdgeemoError(f"--data: no training onset of {emotion} in seed {seed}'s split for Fig. 2")
    flat = x.reshape(len(x), -1)
    return x[np.argmin(((flat - flat.mean(axis=0)) ** 2).sum(axis=1))]
