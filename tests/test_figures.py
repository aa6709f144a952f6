"""Figures and the report section of the landmark selection: Fig. 2, Fig. 3, importance maps, accuracy against K."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.offline
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgeemo.emotions import EMOTIONS  # noqa: E402
from edgeemo.face import N_LANDMARKS  # noqa: E402
from edgeemo.io import atomic_save_npz  # noqa: E402
from offline.explain.figures import alpha_curve_figure, landmark_selection_figure  # noqa: E402
from offline.report.report_explain import explain_section  # noqa: E402
from offline.training.evaluate import protocol_metrics  # noqa: E402
from offline.training.run_folder import Job, RunFolder  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
KS = (468, 64, 16)
SEGMENTS = np.array(["onset", "apex", "offset", "neutral"] * 12)
Y = np.where(SEGMENTS == "neutral", -1, np.repeat(np.arange(6), 8) % 6)


def is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def fake_run(root, ks=KS, explained=True) -> tuple[RunFolder, dict]:
    """T-EMO results at each K for 6 emotions x 2 seeds (accuracy falling with K), and an explain folder."""
    run = RunFolder(root)
    rng = np.random.default_rng(0)
    truth = np.where(np.isin(SEGMENTS, ["onset", "apex"]), Y, -1)
    results = {}
    for k in ks:
        for seed in (0, 1):
            for e, emotion in enumerate(EMOTIONS):
                noise = 0.1 + 0.1 * (k < 64)
                scores = np.clip((truth == e) * 0.8 + rng.normal(0.1, noise, len(Y)), 0, 1)
                job = Job("t-emo", k, emotion, seed)
                results[job] = {"metrics": protocol_metrics(Y, SEGMENTS, scores, e, 0.5), "landmarks": list(range(k))}
    if explained:
        scores = rng.gamma(1.0, 1.0, (len(EMOTIONS), N_LANDMARKS))
        ranking = {e: np.argsort(-scores[i]).tolist() for i, e in enumerate(EMOTIONS)}
        completeness = {"median": 0.01, "worst": 0.03, "steps": 64, "samples": 10, "paths": 50, "refined": 3,
                        "most_nodes": 126}
        run.write_json(run.root / "explain" / "t-emo" / "ranking.json",
                       {"emotions": ranking, "settings": {"steps": 64, "rule": "riemann_right"},
                        "completeness": {e: completeness for e in EMOTIONS}})
        atomic_save_npz(run.root / "explain" / "t-emo" / "scores.npz", scores=scores,
                        per_baseline=np.repeat(scores[:, None], 5, axis=1),
                        completeness_median=np.full((6, 5), 0.01), completeness_worst=np.full((6, 5), 0.03))
    return run, results


def test_report_section_has_tables_by_k_and_every_figure(tmp_path):
    run, results = fake_run(tmp_path / "run")
    section = explain_section(run, results)

    names = sorted(p.name for p in section.figures)
    expected = sorted([f"accuracy_vs_k_{p}.png" for p in ("paper", "streaming")] + ["importance_t-emo.png"]
                      + [f"landmarks_t-emo_{e}.png" for e in EMOTIONS])
    assert names == expected
    assert all(is_png(p) and p.parent == run.report_dir for p in section.figures)
    markdown = section.markdown
    assert markdown.count("| Emotion | 468 | 64 | 16 |") == 2  # Table 6 layout, paper and streaming protocol
    anger = next(line for line in markdown.splitlines() if line.startswith("| Anger |") and "±" in line)
    assert anger.count("±") == 3
    top = run.read_json(run.root / "explain" / "t-emo" / "ranking.json")["emotions"]["anger"][:10]
    completeness = "1.0% / 3.0% (3 of 50 refined, up to 126 nodes)"  # median / worst, refined paths
    assert f"| Anger | {' '.join(map(str, top))} | {completeness} |" in markdown
    assert all(f"]({name})" in markdown for name in names)


def test_a_run_with_only_468_landmarks_and_no_ranking_gets_no_section(tmp_path):
    run, results = fake_run(tmp_path / "run", ks=(468,), explained=False)
    section = explain_section(run, results)
    assert section.markdown == "" and section.figures == []
    assert not run.report_dir.exists()


def test_fig_3_marks_the_top_k_on_the_face(tmp_path):
    order = np.arange(N_LANDMARKS)[::-1]
    paths = [landmark_selection_figure(order, (234, 128, 64, 32, 16), f"k {k}", tmp_path / f"fig3_{k}.png")
             for k in (1, 2)]
    assert all(is_png(p) for p in paths)


def test_fig_2_draws_the_probability_along_the_path(tmp_path):
    import keras

    frames, landmarks = 3, 5
    inputs = keras.Input((frames, 2, landmarks, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    sample, baseline = rng.normal(0, 1, (2, frames, 2, landmarks)).astype(np.float32)
    path = alpha_curve_figure(model, sample, {"a sadness onset": baseline, "its own rest": sample[:1].repeat(frames, 0)},
                              emotion="surprise", title="toy", path=tmp_path / "report" / "ig_alpha.png")
    assert is_png(path)
