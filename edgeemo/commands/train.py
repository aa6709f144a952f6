"""``edgeemo train``: T-EMO / R-EMO per emotion over seeds, with SVM baselines, into a run folder (offline extra)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edgeemo.commands.common import (
    add_job_arguments, emotion_list, given_file, import_offline, k_list, positive_int, training_settings,
)
from edgeemo.emotions import EMOTIONS


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "train", help="train the six binary emotion models (T-EMO, R-EMO) and the SVM baselines",
        allow_abbrev=False,
        description="One binary model per emotion and seed, each seed with its own subject-disjoint split. "
        "Resumable: finished (model, K, emotion, seed) jobs in --out are skipped.",
    )
    p.add_argument("--data", type=Path, required=True, metavar="FILE", help="landmark dataset (.npz)")
    p.add_argument("--arch", choices=("t-emo", "r-emo", "both"), default="both", help="network(s) to train")
    p.add_argument("--landmarks", default="all", metavar="all|RANKING_FILE",
                   help="'all' (468) or a ranking file (JSON) to take each emotion's top K from")
    p.add_argument("--k", type=k_list, default=None, metavar="K[,K...]",
                   help="landmarks per model, e.g. 64 or 234,128,64 (below 468 needs a ranking file)")
    p.add_argument("--seeds", type=positive_int, default=None, metavar="N",
                   help="seeds 0..N-1, each with its own split (default: the settings', 10; quick mode 1)")
    p.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder to write (or resume)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 1 seed, fewer subjects, tiny models")
    p.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True, help="linear and RBF SVMs too")
    p.add_argument("--grid", action="store_true", help="grid-search F, Q, R on training data first and use the best")
    p.add_argument("--emotions", type=emotion_list, default=EMOTIONS, metavar="LIST",
                   help="comma-separated subset (default: all six)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="settings file (default: offline/resources/configs/train.toml)")
    p.add_argument("--hyperparameters", type=Path, default=None, metavar="FILE",
                   help="F, Q, R table (default: the paper's, offline/resources/configs/paper_hyperparameters.toml; "
                   "or a grid's RUN/grid/best.json)")
    add_job_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
    settings = training_settings(args)  # a bad settings file is refused before TensorFlow loads (seconds)
    hyperparameters = given_file(args.hyperparameters, "--hyperparameters")
    train = import_offline("offline.training.train")
    ranking = None if args.landmarks == "all" else Path(args.landmarks)
    summary = train.train_run(
        args.data, args.out, archs=("t-emo", "r-emo") if args.arch == "both" else (args.arch,),
        ks=args.k or (468,), ranking=ranking, seeds=args.seeds, emotions=args.emotions, baselines=args.baselines,
        grid=args.grid, settings=settings, hyperparameters=hyperparameters, workers=args.workers,
        ray_address=args.ray_address,
    )
    print(f"{len(summary.trained)} models trained, {len(summary.skipped)} already done, "
          f"{summary.seconds:.0f} s; report: edgeemo report {args.out}")
    return 0
