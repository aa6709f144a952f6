"""``edgeemo explain``: rank the 468 landmarks per emotion with global Integrated Gradients (offline extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeemo.commands.common import import_offline


def _steps(text: str) -> int | str:
    if text == "auto":
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("explain", help="rank the landmarks per emotion with global Integrated Gradients",
                         allow_abbrev=False,
                         description="Global IG (the paper's section 3.3) over a run's 468-landmark models; writes "
                                     "RUN/explain/ARCH/ranking.json for edgeemo train --landmarks and edgeemo select.")
    p.add_argument("run", type=Path, metavar="RUN", help="training run folder (with 468-landmark models)")
    p.add_argument("--data", type=Path, required=True, help="the dataset the run was trained on")
    p.add_argument("--arch", choices=("t-emo", "r-emo"), default="t-emo")
    p.add_argument("--steps", type=_steps, default=64, help="interpolation steps m, or 'auto' (default 64)")
    p.add_argument("--rule", default="riemann_right", help="riemann_right (the paper's), trapezoid, gauss_legendre")
    p.add_argument("--baseline", default="neutral",
                   help="neutral (default: each sample's own first frame, held), or the paper's one typical sequence "
                        "per other emotion: medoid or confident")
    p.add_argument("--score", default="evidence",
                   help="per landmark: evidence (default: its IG summed, what it adds to P(emotion)) or the "
                        "paper's magnitude (|IG| summed)")
    p.add_argument("--models", default="all",
                   help="all (default: every seed's 468-landmark model, scores averaged over them) or best (the "
                        "seed with the best validation score)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                   help="give paths whose attributions miss F(x) - F(x') by over 1%% more nodes where F turns "
                        "(--no-refine: the rule's m for every path, as the paper)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    explain = import_offline("offline.explain.explain")
    ranking = explain.explain_run(args.run, args.data, arch=args.arch, steps=args.steps, rule=args.rule,
                                  baseline=args.baseline, score=args.score, models=args.models, refine=args.refine)
    for emotion, c in ranking["completeness"].items():
        print(f"{emotion:<10} top 10 {ranking['emotions'][emotion][:10]}  completeness median {c['median']:.2%} "
              f"worst {c['worst']:.2%} (m={c['steps']}, {c['samples']} samples of {c['models']} model(s); "
              f"{c['refined']} of {c['paths']} paths refined, up to {c['most_nodes']} nodes)")
    print(f"ranking: {explain.ranking_path(explain.RunFolder(args.run), args.arch)}")
    return 0
