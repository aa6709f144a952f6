"""``edgeemo report``: Markdown tables laid out like the paper's Tables 6-7, fused confusion, PNG figures."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.cli import main
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from offline.training.evaluate import PROTOCOLS, expressed, protocol_metrics
from offline.training.run_folder import Job, RunFolder

pytestmark = pytest.mark.offline

SEEDS = (0, 1)
MODELS = ("t-emo", "svm-rbf")
SEGMENTS = np.array(["onset", "apex", "offset", "neutral"] * 12)
Y = np.where(SEGMENTS == "neutral", -1, np.repeat(np.arange(6), 8) % 6)


def fake_run(root) -> RunFolder:
    """Results as training writes them, for 2 models x 6 emotions x 2 seeds, with noisy but mostly
    right scores, so the report has numbers without training anything."""
    run = RunFolder(root)
    rng = np.random.default_rng(0)
    truth = expressed(Y, SEGMENTS)
    for model in MODELS:
        for seed in SEEDS:
            for e, emotion in enumerate(EMOTIONS):
                scores = np.clip((truth == e) * 0.8 + rng.normal(0.1, 0.15, len(Y)), 0, 1).astype(np.float32)
                result = {
                    "threshold": 0.5, "landmarks": list(range(468)), "train_seconds": 1.5 + seed,
                    "metrics": protocol_metrics(Y, SEGMENTS, scores, e, 0.5),
                }
                if model == "t-emo":
                    result["history"] = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.55]}
                predictions = {"val_index": np.arange(4), "val_y": Y[:4], "val_segment": SEGMENTS[:4],
                               "val_score": scores[:4], "test_index": np.arange(len(Y)), "test_y": Y,
                               "test_segment": SEGMENTS, "test_score": scores}
                run.write_result(Job(model, 468, emotion, seed), result, predictions)
    return run


def test_report_writes_tables_per_protocol_and_metric_and_png_figures(tmp_path):
    run = fake_run(tmp_path / "run")
    assert main(["report", str(run.root)]) == 0

    markdown = (run.report_dir / "report.md").read_text()
    for protocol in PROTOCOLS:
        assert markdown.count(f"Confusion, T-EMO 468, {protocol}") == 1
    assert markdown.count("| Emotion | T-EMO 468 | RBF SVM 468 |") == 2 * 4 + 1  # 2 protocols x 4 metrics + time
    for emotion in EMOTIONS:
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {emotion.capitalize()} |"))
        assert row.count("±") == 2  # one mean ± std cell per model
    assert "| truth \\ predicted | anger | disgust | fear | happiness | sadness | surprise | neutral |" in markdown
    assert "| Anger | 2.0 ± 0.7 | 2.0 ± 0.7 |" in markdown  # training seconds 1.5 and 2.5 over the seeds

    expected = {f"accuracy_{p}.png" for p in PROTOCOLS} | {"learning_curves_t-emo_k468.png"}
    expected |= {f"confusion_{m}_k468_{p}.png" for m in MODELS for p in PROTOCOLS}
    pngs = {p.name for p in run.report_dir.glob("*.png")}
    assert pngs == expected
    for name in pngs:
        assert (run.report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in markdown


def test_fused_confusion_counts_every_test_window_of_every_seed(tmp_path):
    run = fake_run(tmp_path / "run")
    from offline.report.report import write_report

    write_report(run.root, threshold=0.5)
    lines = (run.report_dir / "report.md").read_text().splitlines()
    start = lines.index("### Confusion, T-EMO 468, streaming (rows truth, columns prediction; summed over seeds)")
    counts = np.array([[int(v) for v in row.strip("|").split("|")[1:]] for row in lines[start + 4:start + 11]])
    assert counts.shape == (7, 7)
    assert counts.sum() == len(SEEDS) * len(Y)
    assert counts[-1].sum() == len(SEEDS) * (Y.size - np.isin(SEGMENTS, ["onset", "apex"]).sum())


def test_report_of_an_empty_run_is_refused(tmp_path):
    from offline.report.report import write_report

    with pytest.raises(EdgeemoError, match="no finished training jobs"):
        write_report(tmp_path / "nothing")


def test_fused_confusion_is_what_a_bundle_of_each_seeds_models_publishes(tmp_path):
    """Models whose validation scores put their decision points far apart (0.2 to 0.8): the report's
    confusion counts, window by window, the label the runtime's fuse gives with the thresholds export
    would put in the bundle, not a global argmax against one threshold."""
    from edgeemo.classifier import fuse as runtime_fuse
    from offline.export.export import choose_threshold
    from offline.report.report import write_report
    from offline.training.evaluate import binary_labels

    rng = np.random.default_rng(7)
    run, n_val, n_test = RunFolder(tmp_path / "run"), 40, 300
    val_y, val_segment = rng.integers(0, 6, n_val), np.full(n_val, "onset")
    test_y, test_segment = rng.integers(-1, 6, n_test), rng.choice(["onset", "apex", "offset"], n_test)
    test_segment[test_y == -1] = "neutral"
    scores = rng.uniform(0, 1, (n_test, 6)).astype(np.float32)
    thresholds = []
    for e, emotion in enumerate(EMOTIONS):
        centre = 0.2 + 0.12 * e  # this model's decision point on its validation windows
        val_score = np.clip(centre + np.where(val_y == e, 0.1, -0.1) + rng.normal(0, 0.03, n_val), 0, 1)
        thresholds.append(choose_threshold(binary_labels(val_y, val_segment, e), val_score))
        predictions = {"val_index": np.arange(n_val), "val_y": val_y, "val_segment": val_segment,
                       "val_score": val_score.astype(np.float32), "test_index": np.arange(n_test), "test_y": test_y,
                       "test_segment": test_segment, "test_score": scores[:, e]}
        result = {"threshold": 0.5, "landmarks": list(range(468)), "train_seconds": 1.0,
                  "history": {"loss": [0.5], "val_loss": [0.6]},
                  "metrics": protocol_metrics(test_y, test_segment, scores[:, e], e, 0.5)}
        run.write_result(Job("t-emo", 468, emotion, 0), result, predictions)
    assert max(thresholds) - min(thresholds) > 0.4

    classes = EMOTIONS + ("neutral",)
    truth = [EMOTIONS[y] if s in ("onset", "apex") else "neutral" for y, s in zip(test_y, test_segment)]
    labels = [runtime_fuse(row, np.array(thresholds)) for row in scores]  # what the bundle publishes
    expected = np.zeros((7, 7), dtype=int)
    for t, p in zip(truth, labels):
        expected[classes.index(t), classes.index(p)] += 1
    old_rule = [EMOTIONS[int(np.argmax(r))] if r.max() >= 0.5 else "neutral" for r in scores]
    assert old_rule != labels  # the case tells the two rules apart

    write_report(run.root)
    lines = (run.report_dir / "report.md").read_text().splitlines()
    start = lines.index("### Confusion, T-EMO 468, streaming (rows truth, columns prediction; summed over seeds)")
    counts = np.array([[int(v) for v in row.strip("|").split("|")[1:]] for row in lines[start + 4:start + 11]])
    np.testing.assert_array_equal(counts, expected)
    assert "chosen on its validation windows (as `edgeemo export` chooses them)" in "\n".join(lines)
