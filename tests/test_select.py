"""``edgeemo select``: retraining on the top K of a run's ranking, the cost of each K, refusal of bad input."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
from contextlib import redirect_stdout

import numpy as np
import pytest

pytestmark = pytest.mark.offline
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgeemo.cli import main  # noqa: E402
from edgeemo.errors import EdgeemoError  # noqa: E402
from edgeemo.face import N_LANDMARKS  # noqa: E402
from offline.explain.select import cost_path, network_cost, select_run  # noqa: E402
from offline.training.model import build_model  # noqa: E402
from offline.training.run_folder import Job, RunFolder  # noqa: E402
from offline.training.train import train_run  # noqa: E402
from offline.training.train_config import TRAIN_CONFIG, load_settings  # noqa: E402

EMOTIONS = ("surprise",)  # the paper's Fig. 2 emotion; one emotion keeps the module under a minute
KS = (32, 8)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """60 sequences of 20 subjects from the built-in generator, with its ground truth beside the file as
    ``edgeemo data synth`` writes it (without the realism reports, which take seconds)."""
    from offline.synth.generate import generate
    from offline.synth.plan import Settings
    from offline.synth.synthesize import truth_path
    from offline.synth.truth import ground_truth

    path = tmp_path_factory.mktemp("data") / "synth.npz"
    dataset = generate(Settings(60, 20, 87 / 574, 16, ("apex", "offset", "neutral"), 0), progress=False)
    dataset.meta["truth"] = truth_path(path).name
    dataset.save(path)
    truth_path(path).write_text(json.dumps(ground_truth()))
    return path


@pytest.fixture(scope="module")
def settings_file(tmp_path_factory):
    """offline/resources/configs/train.toml whose quick mode keeps every subject (20 is few) and uses one thread."""
    head, quick = TRAIN_CONFIG.read_text().split("[quick.train]")
    quick = re.sub(r"subject_fraction = [0-9.]+", "subject_fraction = 1.0", quick, count=1)
    path = tmp_path_factory.mktemp("config") / "train.toml"
    path.write_text(f"{head}[quick.train]{quick}\n[quick.compute]\nthreads = 1\n")
    settings = load_settings(path, quick=True)
    assert settings.train.subject_fraction == 1.0 and settings.compute.threads == 1
    return path


@pytest.fixture(scope="module")
def selected(synthetic, settings_file, tmp_path_factory):
    """A quick run: T-EMO at 468 landmarks, a ranking that puts each emotion's truth landmarks first
    (as explain would write it), then ``edgeemo select`` at K = 32 and 8. Returns (run, ranking, output)."""
    settings = load_settings(settings_file, quick=True)
    run = RunFolder(tmp_path_factory.mktemp("run") / "run")
    train_run(synthetic, run.root, archs=("t-emo",), emotions=EMOTIONS, baselines=False, settings=settings,
              progress=False)
    truth = json.loads(synthetic.with_name("synth.truth.json").read_text())["emotions"]
    ranking = {e: truth[e]["landmarks"] + [i for i in range(N_LANDMARKS) if i not in truth[e]["landmarks"]]
               for e in truth}
    run.write_json(run.root / "explain" / "t-emo" / "ranking.json", {"emotions": ranking, "settings": {}})
    output = io.StringIO()
    with redirect_stdout(output):
        code = main(["select", str(run.root), "--data", str(synthetic), "--k", ",".join(map(str, KS)),
                     "--arch", "t-emo", "--emotions", ",".join(EMOTIONS), "--quick", "--config", str(settings_file),
                     "--latency-budget", "0.2", "--workers", "1"])  # in this process: Ray has test_ray_jobs
    assert code == 0
    return run, ranking, output.getvalue()


def test_select_trains_each_k_on_the_top_k_of_the_runs_ranking(selected):
    run, ranking, output = selected
    jobs = [j for j in run.finished_jobs() if j.k < N_LANDMARKS]
    assert sorted(jobs) == sorted(Job("t-emo", k, e, 0) for k in KS for e in EMOTIONS)
    for job in jobs:
        result = run.read_result(job)
        assert result["landmarks"] == sorted(ranking[job.emotion][:job.k])
        assert run.load_model(job).input.shape == (None, 16, 2, job.k, 1)
    assert f"landmarks of t-emo: {run.root / 'explain' / 't-emo' / 'ranking.json'}" in output
    assert "2 models trained, 0 already done" in output


def test_cost_has_parameters_and_flops_falling_with_k_and_an_onnx_latency(selected):
    run, _, output = selected
    cost = json.loads(cost_path(run).read_text())
    rows = cost["archs"]["t-emo"]
    assert [r["k"] for r in rows] == [N_LANDMARKS, *KS]
    for field in ("parameters", "trainable", "flops"):
        values = [r[field] for r in rows]
        assert values == sorted(values, reverse=True) and len(set(values)) == len(values), field
    assert all(r["latency"]["networks"] == 1 and r["latency"]["median_ms"] > 0 for r in rows)
    model = run.load_model(Job("t-emo", 32, "surprise", 0))
    surprise = rows[1]["emotions"]["surprise"]
    assert surprise["parameters"] == model.count_params()
    assert surprise["trainable"] == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert f"t-emo    {KS[1]:>2} {rows[2]['parameters']:>11,}" in output


@pytest.mark.parametrize("shape", [
    dict(frames=5, landmarks=30, kernel=(2, 1), stride=(1, 1)),
    dict(frames=4, landmarks=17, kernel=(2, 3), stride=(1, 2)),
    dict(frames=3, landmarks=9, kernel=(1, 2), stride=(1, 1)),
], ids=["2x1", "2x3-stride-2", "1x2"])
def test_parameters_counted_from_the_layer_shapes_match_keras(shape):
    arch_weights = {}
    for arch in ("t-emo", "r-emo"):
        model = build_model(shape["frames"], shape["landmarks"], 4, 6, 5, arch=arch, kernel=shape["kernel"],
                            stride=shape["stride"])
        arch_weights[arch] = (model.count_params(), sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    cost = network_cost(shape["frames"], shape["landmarks"], 4, 6, 5, kernel=shape["kernel"], stride=shape["stride"])
    assert cost.parameters == arch_weights["t-emo"][0] == arch_weights["r-emo"][0]
    assert cost.trainable == {arch: weights[1] for arch, weights in arch_weights.items()}
    assert network_cost(shape["frames"], 2 * shape["landmarks"], 4, 6, 5, kernel=shape["kernel"],
                        stride=shape["stride"]).flops > cost.flops


def test_select_scores_the_ranking_against_the_truth_and_the_report_shows_it(selected):
    from offline.report.report_explain import explain_section

    run, _, output = selected
    fidelity = json.loads((run.root / "explain" / "t-emo" / "fidelity.json").read_text())
    printed = next(line for line in output.splitlines() if line.startswith("precision@K"))
    assert [cell.split()[0] for cell in printed.split(": ", 1)[1].split(", ")] == ["K=16", "K=32", "K=64", "K=128"]
    assert sorted(fidelity["emotions"]) == sorted(EMOTIONS)
    for record in fidelity["emotions"].values():  # the ranking is the truth: precision is the best possible
        assert record["precision"]["ig"] == record["precision"]["best_possible"]
        assert set(record["precision"]["saliency"]) == {"16", "32", "64", "128"}
    assert (run.report_dir / "ig_alpha_t-emo.png").read_bytes()[:4] == b"\x89PNG"

    section = explain_section(run, {job: run.read_result(job) for job in run.finished_jobs()})
    assert "| Emotion | 468 | 32 | 8 |" in section.markdown
    assert "| *Parameters* |" in section.markdown and "## Fidelity of the T-EMO ranking" in section.markdown
    drawn = {p.name for p in section.figures}
    assert drawn >= {"cost_vs_k.png", "accuracy_vs_k_paper.png", "landmarks_t-emo_surprise.png"}
    assert "](ig_alpha_t-emo.png)" in section.markdown


@pytest.fixture
def refusal(selected, synthetic, settings_file, tmp_path):
    """select_run arguments that are fine for the selected run; a test changes one of them."""
    run, _, _ = selected
    return dict(run_dir=run.root, data=synthetic, ks=KS, archs=("t-emo",), emotions=EMOTIONS,
                settings=load_settings(settings_file, quick=True), progress=False)


def _copy(arguments, tmp_path, rankings: dict[str, list[int]]):
    """The run's config.json in a new folder, with the given ranking orders of anger per arch."""
    copy = RunFolder(tmp_path / "copy")
    copy.root.mkdir()
    shutil.copy(RunFolder(arguments["run_dir"]).config_path, copy.config_path)
    for arch, order in rankings.items():
        copy.write_json(copy.root / "explain" / arch / "ranking.json", {"emotions": {"surprise": order}})
    return {**arguments, "run_dir": copy.root}


BAD_INPUTS = {
    "k-above-468": (lambda a, tmp: {**a, "ks": (64, 500)}, "--k 500: must be between 1 and 468"),
    "unknown-arch": (lambda a, tmp: {**a, "archs": ("x-emo",)}, "--arch: unknown architecture 'x-emo'"),
    "no-ranking": (lambda a, tmp: _copy(a, tmp, {}), "no landmark ranking"),
    "changed-ranking": (lambda a, tmp: _copy(a, tmp, {"t-emo": list(range(N_LANDMARKS))}),
                        "ranking.json: changed since this run's K < 468 models were trained"),
    "two-rankings": (
        lambda a, tmp: {**_copy(a, tmp, {"t-emo": list(range(N_LANDMARKS)), "r-emo": list(range(N_LANDMARKS))[::-1]}),
                        "archs": ("t-emo", "r-emo")},
        "--arch: .*r-emo/ranking.json differs from .*t-emo/ranking.json",
    ),
    "not-a-run": (lambda a, tmp: {**a, "run_dir": tmp / "nothing"}, "config.json: missing"),
    "other-settings": (
        lambda a, tmp: {**a, "settings": dataclasses.replace(a["settings"], evaluate=dataclasses.replace(
            a["settings"].evaluate, threshold=0.3))},
        "--quick/--config",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_refused_with_one_line_naming_it_before_training(case, refusal, tmp_path):
    make, named = BAD_INPUTS[case]
    arguments = make(refusal, tmp_path)
    before = RunFolder(arguments["run_dir"]).finished_jobs()
    with pytest.raises(EdgeemoError, match=named) as refused:
        select_run(**arguments)
    assert "\n" not in str(refused.value)
    assert RunFolder(arguments["run_dir"]).finished_jobs() == before


def test_the_command_prints_a_bad_k_on_one_line(selected, synthetic, capsys):
    run, _, _ = selected
    assert main(["select", str(run.root), "--data", str(synthetic), "--k", "600"]) == 2
    assert capsys.readouterr().err == "edgeemo: error: --k 600: must be between 1 and 468\n"
