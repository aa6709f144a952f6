"""``edgeemo select``: retrain on each emotion's top K landmarks of the run's own IG ranking, and what each K costs.

Training goes through ``offline.training.train.train_run`` into the same run folder, with the run's own settings,
hyperparameter table (or grid search) and seeds, so the K < 468 models follow the protocol of the 468 ones
and an interrupted selection resumes. Then, per architecture and K, RUN/select/cost.json:

  parameters  every weight of each emotion's network (as Keras counts them), and those trained
  flops       one window through one network, counted from the layer shapes (``network_cost``)
  latency     the six emotion networks exported to ONNX and run one after another on one window (batch 1,
              one ONNX Runtime thread, CPU), as the runtime classifies; median over a time budget

For each arch whose own ranking is in the run it then draws the paper's Fig. 2 (offline.explain.figures) and, on a
dataset with ground truth (the built-in synthetic set), scores the ranking against it (offline.explain.fidelity):
both need the data, which ``edgeemo report`` does not read.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS
from offline.data.dataset import LandmarkDataset
from offline.explain.explain import ranking_path
from offline.export.export import open_trained_run
from offline.training.landmark_subsets import ranking_digest
from offline.training.model import ARCHS
from offline.training.run_folder import Job, RunFolder
from offline.training.train import TrainSummary, train_run
from offline.training.train_config import Settings, load_settings

PAPER_KS = (234, 128, 64, 32, 16)
LATENCY_BUDGET_S = 3.0
FLOPS_RULE = (
    "one window through one network at inference: 2 per multiply-accumulate of the convolution, LSTM and "
    "dense layers (bias adds included), plus 1 per element of each element-wise step (standardise 2, ReLU 1, "
    "batch norm 2, LSTM gate activations and cell update 9 per unit and frame, softmax 5); sigmoid, tanh "
    "and exp count as 1; dropout is the identity"
)


class Network(NamedTuple):
    """The shape of one trained emotion network, as its result JSON records it."""

    frames: int
    landmarks: int
    filters: int
    lstm_units: int
    dense_units: int


class NetworkCost(NamedTuple):
    parameters: int  # every weight, as keras.Model.count_params()
    trainable: dict[str, int]  # per arch: batch-norm statistics are never trained, R-EMO's convolution neither
    flops: int


def network_cost(frames: int, landmarks: int, filters: int, lstm_units: int, dense_units: int, *,
                 kernel=(2, 1), stride=(1, 1), standardize: bool = True) -> NetworkCost:
    """Parameters and FLOPs of offline.training.model.build_model's network, from its layer shapes (see FLOPS_RULE)."""
    (kh, kw), (sh, sw) = kernel, stride
    positions = ((2 - kh) // sh + 1) * ((landmarks - kw) // sw + 1)  # conv outputs per frame and filter
    lstm_inputs = positions * filters  # one frame's flattened feature maps
    conv = kh * kw * filters + filters
    batch_norm = 4 * filters  # gamma, beta, moving mean and variance
    lstm = 4 * lstm_units * (lstm_inputs + lstm_units) + 4 * lstm_units
    dense = lstm_units * dense_units + dense_units + 2 * dense_units + 2
    parameters = conv + batch_norm + lstm + dense
    flops = (
        (2 * frames * 2 * landmarks if standardize else 0)
        + frames * positions * filters * (2 * kh * kw + 1 + 2)  # multiply-adds, ReLU, batch norm
        + frames * (8 * lstm_units * (lstm_inputs + lstm_units) + 9 * lstm_units)
        + 2 * lstm_units * dense_units + dense_units + 4 * dense_units + 5
    )
    untrained = 2 * filters
    return NetworkCost(parameters, {"t-emo": parameters - untrained, "r-emo": parameters - untrained - conv}, flops)


@dataclass
class SelectSummary:
    rankings: dict[str, Path]  # the ranking file each arch's K < 468 models take their landmarks from
    training: TrainSummary
    cost_path: Path
    cost: dict
    fidelity: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


def select_run(
    run_dir: str | Path,
    data: str | Path,
    *,
    ks: tuple[int, ...] = PAPER_KS,
    archs: tuple[str, ...] = ARCHS,
    seeds: int | None = None,
    emotions: tuple[str, ...] = EMOTIONS,
    quick: bool = False,
    settings: Settings | None = None,
    latency_budget_s: float = LATENCY_BUDGET_S,
    progress: bool = True,
    workers: int = 1,
    ray_address: str | None = None,
) -> SelectSummary:
    """Train every (arch, K, emotion, seed) not yet in the run, then write RUN/select/cost.json.

    ``seeds`` default to those the run's 468-landmark networks were trained with; ``settings`` to
    offline/resources/configs/train.toml (its quick mode with ``quick``), which must be the ones the run was made with.
    ``workers`` and ``ray_address`` say where the training jobs run, as for train_run.
    """
    _check_request(ks, archs)
    run, config, dataset = open_trained_run(run_dir, data)
    rankings = {arch: _ranking_for(run, arch) for arch in archs}
    ranking = _one_ranking(rankings, config, run)
    settings = settings or load_settings(quick=quick)
    if settings.results_relevant() != config["settings"]:
        raise EdgeemoError(f"--quick/--config: {run.config_path} was made with other training settings; "
                           "pass the ones the run was trained with (--quick if it was)")
    with tempfile.TemporaryDirectory(prefix="edgeemo-select-") as tmp:
        grid = config["hyperparameters"] == "grid"
        table = None if grid else Path(tmp) / "hyperparameters.json"
        if table is not None:  # the run's own table, so train_run sees the same one it recorded
            table.write_text(json.dumps(config["hyperparameters"]), encoding="utf-8")
        training = train_run(
            dataset, run.root, archs=archs, ks=ks, ranking=ranking, seeds=seeds or _trained_seeds(run, archs),
            emotions=emotions, baselines=False, grid=grid, settings=settings, hyperparameters=table,
            progress=progress, workers=workers, ray_address=ray_address,
        )
    cost = measure_cost(run, budget_s=latency_budget_s, progress=progress)
    summary = SelectSummary(rankings, training, cost_path(run), cost)
    _fidelity_and_fig_2(run, dataset, data, summary, emotions, progress)
    return summary


def cost_path(run: RunFolder) -> Path:
    return run.root / "select" / "cost.json"


def measure_cost(run: RunFolder, *, budget_s: float = LATENCY_BUDGET_S, progress: bool = True) -> dict:
    """Parameters, FLOPs and ONNX latency of every arch and K with trained networks in the run; writes
    and returns cost.json's content (per arch, a row per K, largest first)."""
    from edgeemo.benchmark.timing import machine

    config = run.read_json(run.config_path)
    model = config["settings"]["model"]
    shape = {"kernel": tuple(model["kernel"]), "stride": tuple(model["stride"]), "standardize": model["standardize"]}
    groups: dict[tuple[str, int], dict[str, Job]] = {}
    for job in run.finished_jobs():  # seeds ascending: the first job of a group is its lowest seed
        if job.model in ARCHS:
            groups.setdefault((job.model, job.k), {}).setdefault(job.emotion, job)
    rows: dict[str, list[dict]] = {}
    timed: dict[tuple, dict] = {}  # the same networks take the same time: R-EMO reuses T-EMO's measurement
    for arch, k in tqdm(sorted(groups, key=lambda g: (ARCHS.index(g[0]), -g[1])), desc="cost", unit="K",
                        disable=not progress):
        jobs = groups[(arch, k)]
        networks = {e: _network(run.read_result(j)) for e, j in jobs.items()}
        costs = {e: network_cost(*networks[e], **shape) for e in networks}
        signature = tuple(sorted(networks.items()))
        if signature not in timed:
            timed[signature] = {"measured_on": arch, **_latency(run, jobs, networks, budget_s)}
        rows.setdefault(arch, []).append({
            "k": k,
            "emotions": {e: _emotion_row(arch, networks[e], costs[e], jobs[e]) for e in jobs},
            "parameters": sum(c.parameters for c in costs.values()),
            "trainable": sum(c.trainable[arch] for c in costs.values()),
            "flops": sum(c.flops for c in costs.values()),
            "latency": timed[signature],
        })
    cost = {
        "flops_rule": FLOPS_RULE,
        "latency": {"what": "the emotion networks of a K one after another on one window (batch 1), ONNX Runtime "
                            "CPU, 1 thread; median wall time over the budget (cpu_median_ms: the process's CPU "
                            "time, which other processes on the cores do not inflate)",
                    "budget_s": budget_s, "machine": machine()},
        "archs": rows,
    }
    run.write_json(cost_path(run), cost)
    return cost


def _emotion_row(arch: str, network: Network, cost: NetworkCost, job: Job) -> dict:
    return {"filters": network.filters, "lstm_units": network.lstm_units, "dense_units": network.dense_units,
            "seed": job.seed, "parameters": cost.parameters, "trainable": cost.trainable[arch], "flops": cost.flops}


def _network(result: dict) -> Network:
    hyper = result["hyperparameters"]
    return Network(result["frames"], len(result["landmarks"]), hyper["filters"], hyper["lstm_units"],
                   hyper["dense_units"])


def _latency(run: RunFolder, jobs: dict[str, Job], networks: dict[str, Network], budget_s: float) -> dict:
    """Median time of the group's networks (ONNX, one thread) classifying one window together."""
    import onnxruntime

    from edgeemo.benchmark.timing import measure
    from offline.export.onnx_export import INPUT_NAME, export_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="edgeemo-cost-") as tmp:
        sessions, inputs = [], []
        for emotion, job in jobs.items():
            frames, landmarks = networks[emotion].frames, networks[emotion].landmarks
            path = export_onnx(run.load_model(job), Path(tmp) / f"{emotion}.onnx", frames, landmarks)
            sessions.append(onnxruntime.InferenceSession(str(path), sess_options=options,
                                                         providers=["CPUExecutionProvider"]))
            inputs.append({INPUT_NAME: rng.standard_normal((1, frames, 2, landmarks, 1)).astype(np.float32)})

        def classify() -> None:
            for session, feed in zip(sessions, inputs):
                session.run(None, feed)

        return {"networks": len(sessions), **measure(classify, budget_s).summary()}


def _fidelity_and_fig_2(run: RunFolder, dataset: LandmarkDataset, data, summary: SelectSummary,
                        emotions: tuple[str, ...], progress: bool) -> None:
    """For each arch whose own ranking is in the run: Fig. 2, and the ranking's fidelity to the ground truth
    when the data has one (the built-in synthetic set)."""
    from offline.explain.fidelity import truth_file, write_fidelity
    from offline.explain.figures import draw_alpha_curve

    truth = truth_file(data, dataset)
    for arch in [a for a, path in summary.rankings.items() if path == ranking_path(run, a)]:
        if truth is not None:
            summary.fidelity.append(write_fidelity(run, dataset, truth, arch=arch, emotions=emotions,
                                                   progress=progress))
        emotion = "surprise" if "surprise" in emotions else emotions[0]  # the paper's Fig. 2: surprise, sadness
        summary.figures.append(draw_alpha_curve(run, dataset, arch, emotion,
                                                "sadness" if emotion != "sadness" else "happiness"))


def _check_request(ks: tuple[int, ...], archs: tuple[str, ...]) -> None:
    if not ks:
        raise EdgeemoError("--k: give at least one number of landmarks")
    bad = [k for k in ks if not 1 <= k <= N_LANDMARKS]
    if bad:
        raise EdgeemoError(f"--k {bad[0]}: must be between 1 and {N_LANDMARKS}")
    unknown = [a for a in archs if a not in ARCHS]
    if unknown or not archs:
        raise EdgeemoError(f"--arch: unknown architecture {(unknown or [''])[0]!r} "
                           f"(expected {', '.join(ARCHS)} or both)")


def _ranking_for(run: RunFolder, arch: str) -> Path:
    """The arch's own ranking, else T-EMO's (the paper ranks with the trained network)."""
    own = ranking_path(run, arch)
    if own.is_file():
        return own
    fallback = ranking_path(run, ARCHS[0])
    if not fallback.is_file():
        raise EdgeemoError(f"RUN {run.root}: no landmark ranking ({fallback} is missing); "
                           f"run edgeemo explain {run.root} --data FILE first")
    return fallback


def _one_ranking(rankings: dict[str, Path], config: dict, run: RunFolder) -> Path:
    """The one ranking file the run's K < 468 models share (train_run records one per run in config.json)."""
    digests = {arch: ranking_digest(path) for arch, path in rankings.items()}
    if len(set(digests.values())) > 1:
        raise EdgeemoError(
            f"--arch: {rankings['r-emo']} differs from {rankings['t-emo']}, but a run's K < 468 models share one "
            "ranking; select --arch t-emo and --arch r-emo in two copies of the run"
        )
    path, digest = next(iter(rankings.values())), next(iter(digests.values()))
    used = config.get("ranking")
    if used and used["sha256"] != digest:
        raise EdgeemoError(f"{path}: changed since this run's K < 468 models were trained on {used['file']}; "
                           "select into a fresh copy of the run to use the new ranking")
    return path


def _trained_seeds(run: RunFolder, archs: tuple[str, ...]) -> int | None:
    """How many seeds the run's 468-landmark networks have (None: none yet, the settings decide)."""
    seeds = [j.seed for j in run.finished_jobs() if j.model in archs and j.k == N_LANDMARKS]
    return max(seeds) + 1 if seeds else None


def cost_table(cost: dict) -> list[tuple[str, int, int, float, float, float]]:
    """(arch, K, parameters, MFLOPs, latency wall and CPU ms) per row of cost.json, for printing."""
    return [(arch, row["k"], row["parameters"], row["flops"] / 1e6, row["latency"]["median_ms"],
             row["latency"]["cpu_median_ms"]) for arch in ARCHS for row in cost["archs"].get(arch, [])]
