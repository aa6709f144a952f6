"""``edgeemo select RUN``: retrain on the top K landmarks of the run's ranking; the cost of each K (offline extra)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from edgeemo.commands.common import (
    add_job_arguments, emotion_list, import_offline, k_list, positive_float, positive_int, training_settings,
)
from edgeemo.emotions import EMOTIONS

PAPER_KS = "234,128,64,32,16"


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "select", help="retrain on each emotion's top K landmarks of the run's ranking; cost per K",
        allow_abbrev=False,
        description="Trains T-EMO / R-EMO at each K into the same run folder, with the run's settings, "
        "hyperparameters and seeds (resumable), taking each emotion's top K landmarks from "
        "RUN/explain/<arch>/ranking.json (T-EMO's for both unless R-EMO has its own). Then writes parameters, "
        "FLOPs and ONNX latency per K to RUN/select/cost.json; on the built-in synthetic data also the ranking's "
        "fidelity to the ground truth and the paper's Fig. 2. Tables and figures: edgeemo report RUN.",
    )
    p.add_argument("run", type=Path, metavar="RUN", help="training run folder with an explain/ ranking")
    p.add_argument("--data", type=Path, required=True, metavar="FILE", help="the dataset the run was trained on")
    p.add_argument("--k", type=k_list, default=k_list(PAPER_KS), metavar="K[,K...]",
                   help=f"landmarks per model (default: the paper's {PAPER_KS})")
    p.add_argument("--arch", choices=("t-emo", "r-emo", "both"), default="both", help="network(s) to retrain")
    p.add_argument("--seeds", type=positive_int, default=None, metavar="N",
                   help="seeds 0..N-1 (default: as many as the run's 468-landmark models have)")
    p.add_argument("--quick", action="store_true", help="the quick settings (for a run trained with --quick)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="settings file the run was trained with (default: offline/resources/configs/train.toml)")
    p.add_argument("--emotions", type=emotion_list, default=EMOTIONS, metavar="LIST",
                   help="comma-separated subset (default: all six)")
    add_job_arguments(p)
    p.add_argument("--latency-budget", type=positive_float, default=None, metavar="SECONDS",
                   help="time spent measuring the ONNX latency of each K (default: 3)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
    settings = training_settings(args)  # a bad settings file is refused before TensorFlow loads (seconds)
    select = import_offline("offline.explain.select")
    summary = select.select_run(
        args.run, args.data, ks=args.k, archs=("t-emo", "r-emo") if args.arch == "both" else (args.arch,),
        seeds=args.seeds, emotions=args.emotions, settings=settings,
        latency_budget_s=args.latency_budget or select.LATENCY_BUDGET_S, workers=args.workers,
        ray_address=args.ray_address,
    )
    by_file: dict[Path, list[str]] = {}
    for arch, path in summary.rankings.items():
        by_file.setdefault(path, []).append(arch)
    for path, archs in by_file.items():
        print(f"landmarks of {' and '.join(archs)}: {path}")
    print(f"{len(summary.training.trained)} models trained, {len(summary.training.skipped)} already done, "
          f"{summary.training.seconds:.0f} s")
    print(f"{'arch':<6} {'K':>4} {'parameters':>11} {'MFLOPs':>9} {'latency ms, wall / CPU':>23}")
    for arch, k, parameters, mflops, wall, cpu in select.cost_table(summary.cost):
        print(f"{arch:<6} {k:>4} {parameters:>11,} {mflops:>9.1f} {wall:>15.2f} / {cpu:.2f}")
    for path in summary.fidelity:
        record = json.loads(path.read_text(encoding="utf-8"))
        mean = record["mean"]  # keyed by K as text, stored sorted as text: print in K order
        cells = ", ".join(f"K={k} {mean['ig'][k]:.2f} / {mean['saliency'][k]:.2f} / {mean['random_draw'][k]:.2f}"
                          for k in map(str, record["ks"]))
        print(f"precision@K against the ground truth, mean over emotions (IG / saliency / random): {cells}")
    for path in [summary.cost_path, *summary.fidelity, *summary.figures]:
        print(f"wrote {path}")
    print(f"tables and figures: edgeemo report {args.run}")
    return 0
