"""Hand-set against ICT action units, without training a network: the numbers in docs/action-units.md.

    python scripts/compare_action_units.py [--seeds 3] [--out compare.json]

1. Real smiles: ``real_smile_transfer_report`` (a linear classifier trained on synthetic windows made from the
   calibration half's faces, scored on the held-out half's real neutral-to-smiling sequences) per seed, for
   hand units, ICT units, and ICT units on London-made people only (to tell the units' effect from the people's).
2. Synthetic onset recall per emotion of a 7-class linear classifier, trained on one source and tested on
   unseen people of each source (how different the two sets of fields are to a model).
Takes about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeemo.emotions import emotion_name  # noqa: E402
from edgeemo.io import atomic_write_json  # noqa: E402
from offline.synth import calibration  # noqa: E402
from offline.synth import generate as generate_module  # noqa: E402
from offline.synth.calibration import TRANSFER_SETTINGS, displacement_features, real_smile_transfer_report  # noqa: E402
from offline.synth.generate import generate  # noqa: E402

CROSS_SETTINGS = replace(TRANSFER_SETTINGS, sequences=600, subjects=80, windows=("apex", "neutral"), seed=5)


def real_smiles(seeds: int) -> dict:
    rows = {}
    share = generate_module.ICT_PEOPLE_SHARE
    for name, source, ict_people in (("hand", "hand", share), ("ict", "ict", share),
                                     ("ict_units_london_people", "ict", 0.0)):
        generate_module.ICT_PEOPLE_SHARE = ict_people
        calibration._transfer_report.cache_clear()  # its cache does not know the people's share
        try:
            for seed in range(seeds):
                report = real_smile_transfer_report(seed, source)
                called = next(v for k, v in report.items() if k.startswith("real_smiles_called"))
                rows[f"{name}/seed{seed}"] = {**report["by_regularisation"]["C=0.1"], "called_by_7_class": called}
        finally:
            generate_module.ICT_PEOPLE_SHARE = share
    return rows


def cross_source() -> dict:
    data = {s: generate(replace(CROSS_SETTINGS, action_units=s), progress=False) for s in ("hand", "ict")}
    rows = {}
    for train in data:
        d = data[train]
        fit = d.split == "train"
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        model.fit(displacement_features(d.X[fit]), d.y[fit])
        for test in data:
            e = data[test]
            held = (e.split == "test") & (e.segment == "onset")
            pred = model.predict(displacement_features(e.X[held]))
            rows[f"train_{train}/test_{test}"] = {
                emotion_name(int(k)): round(float((pred[e.y[held] == k] == k).mean()), 2)
                for k in np.unique(e.y[held])
            }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here too")
    args = parser.parse_args()
    result = {"real_smile_transfer_C=0.1": real_smiles(args.seeds), "synthetic_onset_recall_7_class": cross_source()}
    print(json.dumps(result, indent=1))
    if args.out:
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
