"""``edgeemo report RUN``: tables (Markdown, laid out like the paper's Tables 6-7) and figures of a run.

Writes into RUN/report/: report.md, accuracy_<protocol>.png, confusion_<model>_k<K>_<protocol>.png and
learning_curves_<arch>_k<K>.png. Reads only the run folder (offline.training.run_folder), never the dataset or
TensorFlow.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.io import atomic_path, atomic_write_text
from offline.export.export import decision_threshold
from offline.report.report_explain import explain_section
from offline.training.evaluate import CLASSES, METRICS, PROTOCOLS, confusion, expressed, fuse, mean_std, protocol_mask
from offline.training.model import ARCHS
from offline.training.run_folder import Job, RunFolder

MODEL_NAMES = {"t-emo": "T-EMO", "r-emo": "R-EMO", "svm-linear": "Linear SVM", "svm-rbf": "RBF SVM"}
METRIC_NAMES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "f1": "F1", "roc_auc": "ROC AUC"}
PROTOCOL_TITLES = {
    "paper": "Paper protocol: onset windows only (neutral to apex, as CK+)",
    "streaming": "Streaming protocol: every window (onset, apex, offset, neutral)",
}

Column = tuple[str, int]  # (model, K)


def write_report(run_dir: str | Path, threshold: float | None = None) -> list[Path]:
    """Write the report of every finished job in ``run_dir``; returns the files written.

    The six emotions are fused as a bundle of each seed's six models would fuse them (edgeemo.classifier.fuse),
    with the thresholds ``edgeemo export`` would give them: ``threshold`` for every emotion, or by default each
    model's own, chosen on its validation windows (offline.export.export.decision_threshold). The binary
    tables keep the threshold the run evaluated its models with.
    """
    run = RunFolder(run_dir)
    jobs = run.finished_jobs()
    if not jobs:
        raise EdgeemoError(f"{run.root}: no finished training jobs to report (run edgeemo train --out {run.root})")
    results = {job: run.read_result(job) for job in jobs}
    binary_threshold = next(iter(results.values()))["threshold"]
    columns = list(dict.fromkeys((j.model, j.k) for j in jobs))
    fused = {column: fused_results(run, jobs, column, threshold) for column in columns}
    out = run.report_dir
    written = [
        *(_accuracy_figure(results, columns, p, out / f"accuracy_{p}.png") for p in PROTOCOLS),
        *(_confusion_figure(fused[c][p]["confusion"], c, p, out / f"confusion_{c[0]}_k{c[1]}_{p}.png")
          for c in columns if fused[c] for p in PROTOCOLS),
        *(_learning_curves(results, c, out / f"learning_curves_{c[0]}_k{c[1]}.png") for c in columns if c[0] in ARCHS),
    ]
    markdown = _markdown(run, results, columns, fused, binary_threshold, threshold, [p.name for p in written])
    section = explain_section(run, results)  # accuracy and cost against K, ranking, fidelity, Fig. 2-3
    atomic_write_text(out / "report.md", markdown + section.markdown)
    return [out / "report.md", *written, *section.figures]


def column_name(column: Column) -> str:
    return f"{MODEL_NAMES[column[0]]} {column[1]}"


# ---- numbers


def _values(results: dict[Job, dict], column: Column, emotion: str, read) -> list:
    return [read(r) for j, r in results.items() if (j.model, j.k) == column and j.emotion == emotion]


def _cell(values: list, digits: int = 3) -> str:
    summary = mean_std(values)
    return "–" if summary is None else f"{summary[0]:.{digits}f} ± {summary[1]:.{digits}f}"


def fused_results(run: RunFolder, jobs: list[Job], column: Column, threshold: float | None = None) -> dict:
    """Per protocol: seven-class (six emotions + neutral) accuracy per seed and the confusion matrix
    summed over seeds; {} when no seed has all six emotions of this model and K. Each seed's test windows
    get the labels a bundle of its six models would publish: edgeemo.classifier.fuse with the thresholds
    export would give them (``threshold`` for all, or None: each chosen on its model's validation windows)."""
    by_seed = defaultdict(dict)
    for job in jobs:
        if (job.model, job.k) == column:
            by_seed[job.seed][job.emotion] = job
    complete = [seed for seed, done in sorted(by_seed.items()) if len(done) == len(EMOTIONS)]
    if not complete:
        return {}
    fused = {p: {"accuracy": [], "confusion": np.zeros((len(CLASSES),) * 2, dtype=np.int64)} for p in PROTOCOLS}
    for seed in complete:
        predictions = [run.read_predictions(by_seed[seed][e]) for e in EMOTIONS]
        if any(not np.array_equal(p["test_index"], predictions[0]["test_index"]) for p in predictions):
            raise EdgeemoError(
                f"{run.root}: {column_name(column)} seed {seed}: the six models were tested on different windows"
            )
        scores = np.stack([p["test_score"] for p in predictions], axis=1)
        thresholds = np.array([decision_threshold(p, e, threshold) for p, e in zip(predictions, EMOTIONS)])
        y, segment = predictions[0]["test_y"], predictions[0]["test_segment"]
        truth, predicted = expressed(y, segment), fuse(scores, thresholds)
        for protocol in PROTOCOLS:
            mask = protocol_mask(protocol, segment)
            fused[protocol]["accuracy"].append(float((truth[mask] == predicted[mask]).mean()) if mask.any() else None)
            fused[protocol]["confusion"] += confusion(truth[mask], predicted[mask])
    return fused


# ---- Markdown


def _markdown(run, results, columns, fused, threshold, fusion_threshold, figures) -> str:
    seeds = sorted({j.seed for j in results})
    header = ["Emotion"] + [column_name(c) for c in columns]
    lines = [
        f"# edgeemo training report: {run.root.name}", "",
        f"{len(results)} finished models; seeds {', '.join(map(str, seeds))}. Each cell is the mean ± standard "
        "deviation over seeds, each seed with its own subject-disjoint split; columns are model and number of "
        f"landmarks K. Binary decisions at score ≥ {threshold:g}.", "",
    ]
    for protocol in PROTOCOLS:
        lines += [f"## {PROTOCOL_TITLES[protocol]}", ""]
        for metric in METRICS:
            rows = [[e.capitalize()] + [_cell(_values(results, c, e, lambda r: r["metrics"][protocol][metric]))
                                        for c in columns] for e in EMOTIONS]
            lines += [f"### {METRIC_NAMES[metric]}", "", *_table(header, rows), ""]
    rows = [[e.capitalize()] + [_cell(_values(results, c, e, lambda r: r["train_seconds"]), 1) for c in columns]
            for e in EMOTIONS]
    lines += ["## Training time per model (seconds, wall clock)", "", *_table(header, rows), ""]
    lines += _fused_markdown(columns, fused, fusion_threshold)
    lines += ["## Figures", "", *(f"![{name}]({name})" for name in figures), ""]
    return "\n".join(lines)


def _fused_markdown(columns, fused, threshold) -> list[str]:
    cuts = (f"{threshold:g} for every emotion (as `edgeemo export --threshold {threshold:g}`)" if threshold is not None
            else "each model's own, chosen on its validation windows (as `edgeemo export` chooses them)")
    lines = [
        "## Six emotions fused", "",
        "Label: what a bundle of each seed's six models publishes (the runtime's fusion): the emotion whose model "
        f"scores highest among those at or above their threshold, else neutral. Thresholds: {cuts}. "
        "Truth: the emotion in onset and apex windows, neutral in offset and neutral windows.", "",
    ]
    present = [c for c in columns if fused[c]]
    if not present:
        return lines + ["No model and K has all six emotions trained for a seed yet.", ""]
    rows = [[protocol] + [_cell(fused[c][protocol]["accuracy"]) for c in present] for protocol in PROTOCOLS]
    lines += ["### Seven-class accuracy", "", *_table(["Protocol"] + [column_name(c) for c in present], rows), ""]
    for column in present:
        for protocol in PROTOCOLS:
            matrix = fused[column][protocol]["confusion"]
            rows = [[CLASSES[i]] + [str(v) for v in row] for i, row in enumerate(matrix)]
            lines += [f"### Confusion, {column_name(column)}, {protocol} (rows truth, columns prediction; "
                      "summed over seeds)", "", *_table(["truth \\ predicted", *CLASSES], rows), ""]
    return lines


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


# ---- figures (matplotlib Figure objects, no pyplot state)


def _save(figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight")
    return path


def _accuracy_figure(results, columns, protocol: str, path: Path) -> Path:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(8.0, 2 + 0.25 * len(EMOTIONS) * len(columns)), 4.5))
    axes = figure.subplots()
    width = 0.8 / len(columns)
    x = np.arange(len(EMOTIONS))
    for i, column in enumerate(columns):
        stats = [mean_std(_values(results, column, e, lambda r: r["metrics"][protocol]["accuracy"])) for e in EMOTIONS]
        means = [s[0] if s else np.nan for s in stats]
        stds = [s[1] if s else 0.0 for s in stats]
        offset = (i - (len(columns) - 1) / 2) * width
        axes.bar(x + offset, means, width, yerr=stds, capsize=2, label=column_name(column))
    axes.set_xticks(x, [e.capitalize() for e in EMOTIONS])
    axes.set_ylabel("test accuracy (mean ± std over seeds)")
    axes.set_ylim(0, 1.05)
    axes.set_title(PROTOCOL_TITLES[protocol], fontsize=10)
    axes.legend(fontsize=7, ncol=min(4, len(columns)), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    return _save(figure, path)


def _confusion_figure(matrix: np.ndarray, column: Column, protocol: str, path: Path) -> Path:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5.2))
    axes = figure.subplots()
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=7,
                      color="white" if share[i, j] > 0.6 else "black")
    axes.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right")
    axes.set_yticks(range(len(CLASSES)), CLASSES)
    axes.set_xlabel("fused prediction")
    axes.set_ylabel("truth")
    axes.set_title(f"{column_name(column)}, {protocol} protocol (counts over seeds; colour: share of row)", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046)
    return _save(figure, path)


def _learning_curves(results, column: Column, path: Path) -> Path:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 6.5), layout="constrained")
    grid = figure.subplots(2, 3, sharex=True)
    for axes, emotion in zip(grid.flat, EMOTIONS):
        for result in _values(results, column, emotion, lambda r: r):
            epochs = np.arange(1, len(result["history"]["loss"]) + 1)
            (line,) = axes.plot(epochs, result["history"]["val_loss"], lw=1)
            axes.plot(epochs, result["history"]["loss"], lw=0.8, ls="--", color=line.get_color())
        axes.set_title(emotion.capitalize(), fontsize=10)
    figure.supxlabel("epoch")
    figure.supylabel("balanced cross-entropy (solid: validation, dashed: training; a colour per seed)")
    figure.suptitle(f"Learning curves, {column_name(column)}")
    return _save(figure, path)
