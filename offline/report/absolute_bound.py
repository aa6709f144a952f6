"""What any absolute judgement of a still face can do on real faces: smiles caught against resting faces called
smiles, on the 50 London dev people (docs/calibration.md#what-an-uncalibrated-judgement-can-do).

    python -m offline.report.absolute_bound [--model BUNDLE] [--out bench/results]   # absolute_bound.{json,md,png}

A face seen for the first time and held still has no rest to be compared with: until one is known, its label can
only be an absolute judgement of that face (the uncalibrated models'). About a minute on 2 cores. Two of the
calibration issue's floors ask this judgement, together, to call no resting face happiness (clip a) and to call
48 of 50 smiles held from the first frame happiness within a second (clip c). This measures how far such
judgements get on MediaPipe's landmarks: classifiers trained on the real faces themselves (each person's neutral
and smiling photo), every person judged by one trained on the 49 others (leave one person out), on the landmarks
the models read (2-D, normalised as edgeemo does) and on MediaPipe's 3-D landmarks; beside them, the shipped
uncalibrated models on the same still faces (trained on synthetic faces only), and, for scale, the same
classifiers trained on fewer people. Per classifier: ROC AUC; smiles caught and resting faces called a smile at
its own threshold; smiles caught while no resting face is called one; resting faces called a smile once 48 smiles
are caught; and people whose smile scores above their own rest (what a calibrated judgement can use).
Photos' landmarks: DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666,
CC BY 4.0 (offline/resources/london-dev).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from edgeemo.benchmark.report import pyplot, record_or_exit
from edgeemo.bundle import load_bundle
from edgeemo.emotions import EMOTIONS
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.io import atomic_path
from edgeemo.model_path import ModelPath
from edgeemo.streaming import make_classifier
from offline.data.face_template import mean_face, similarity_fit
from offline.synth.faces import real_faces
from offline.synth.smile_fit import normalized

NAME = "absolute_bound"
FLOOR_SMILES, FLOOR_RESTS = 48, 0  # calibration issue, clips c and a: 48 of 50 smiles, no resting face
AT_FLOOR = f"rests_called_smile_with_{FLOOR_SMILES}_smiles_caught"
HAPPINESS = EMOTIONS.index("happiness")
CLASSIFIERS: dict[str, Callable] = {
    "logistic regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)),
    "RBF SVM": lambda: make_pipeline(StandardScaler(), PCA(20, random_state=0), SVC(C=1.0)),
    "random forest": lambda: RandomForestClassifier(300, random_state=0),
}
LEARNING_PEOPLE = (12, 24)  # training people for the learning curve, LEARNING_DRAWS draws each; then all 49
LEARNING_DRAWS = 5


def features() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per feature set: (resting faces [50, D], smiling faces [50, D]), person by person."""
    faces = real_faces()
    flat = {"2-D": (normalized(faces.neutral), normalized(faces.smiling))}
    reference = mean_face(faces.neutral)
    flat["3-D"] = tuple(np.array([similarity_fit(face, reference) for face in group])
                        for group in (faces.neutral, faces.smiling))
    return {name: (rest.reshape(len(rest), -1), smile.reshape(len(smile), -1)) for name, (rest, smile) in flat.items()}


def leave_one_out(rest: np.ndarray, smile: np.ndarray, make: Callable, people: int | None = None,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each person's rest and smile scored by a classifier trained on others' (all, or ``people`` drawn by
    ``rng``): scores [n] each, higher = more of a smile; a classifier's own threshold is 0."""
    n = len(rest)
    scores = np.zeros((2, n))
    for person in range(n):
        others = np.delete(np.arange(n), person)
        if people is not None:
            others = rng.choice(others, people, replace=False)
        model = make().fit(np.r_[rest[others], smile[others]], np.r_[np.zeros(len(others)), np.ones(len(others))])
        pair = np.stack([rest[person], smile[person]])
        scores[:, person] = (model.decision_function(pair) if hasattr(model, "decision_function")
                             else model.predict_proba(pair)[:, 1] - 0.5)
    return scores[0], scores[1]


def summary(rest: np.ndarray, smile: np.ndarray, threshold: float = 0.0) -> dict:
    """The measures of one classifier's scores for each person's rest and smile (see the module docstring)."""
    n = len(rest)
    cut = np.sort(smile)[::-1][min(FLOOR_SMILES, n) - 1]  # the highest threshold that catches FLOOR_SMILES
    return {
        "roc_auc": round(float(roc_auc_score(np.r_[np.zeros(n), np.ones(n)], np.r_[rest, smile])), 3),
        "smiles_caught": int((smile >= threshold).sum()),
        "rests_called_smile": int((rest >= threshold).sum()),
        "smiles_caught_with_no_rest_called": int((smile > rest.max()).sum()),
        AT_FLOOR: int((rest >= cut).sum()),
        "smile_above_own_rest": int((smile > rest).sum()),
        "people": n,
    }


def shipped(bundle_path: Path) -> tuple[np.ndarray, np.ndarray, float, str]:
    """The happiness the bundle's uncalibrated models give each still rest and smile, their threshold, the id."""
    bundle = load_bundle(bundle_path)
    absolute = bundle.uncalibrated if bundle.calibrated else bundle
    classifier = make_classifier(bundle)
    path = ModelPath(absolute, classifier.uncalibrated or classifier)
    faces = real_faces()
    rest, smile = ([path.classify_still(face[path.union].astype(np.float32))[HAPPINESS] for face in normalized(group)]
                   for group in (faces.neutral, faces.smiling))
    return np.array(rest), np.array(smile), float(absolute.thresholds[HAPPINESS]), absolute.bundle_id


def learning_curve(rest: np.ndarray, smile: np.ndarray) -> list[dict]:
    """The RBF SVM trained on fewer people (LEARNING_PEOPLE, then all others): each measure's mean over draws."""
    rows = []
    for people in (*LEARNING_PEOPLE, None):
        rng = np.random.default_rng(people)
        draws = [summary(*leave_one_out(rest, smile, CLASSIFIERS["RBF SVM"], people, rng))
                 for _ in range(LEARNING_DRAWS if people else 1)]
        rows.append({"training_people": people or len(rest) - 1,
                     **{key: float(np.mean([d[key] for d in draws])) for key in draws[0] if key != "people"}})
    return rows


def evaluate(bundle_path: Path = DEFAULT_BUNDLE) -> dict:
    shipped_scores = shipped(bundle_path)  # first: a bad bundle is told before a minute of training
    rows, curves = [], {}
    faces = features()
    for feature, (rest, smile) in faces.items():
        for name, make in CLASSIFIERS.items():
            scores = leave_one_out(rest, smile, make)
            label = f"{name}, {feature}, trained on 49 real people"
            rows.append({"classifier": label, **summary(*scores)})
            curves[label] = [s.tolist() for s in scores]
            print(f"{label}: ROC AUC {rows[-1]['roc_auc']}", flush=True)  # a minute in all: show it going
    learning = learning_curve(*faces["2-D"])
    rest, smile, threshold, bundle_id = shipped_scores
    label = f"{bundle_id} (uncalibrated models, synthetic training only)"
    rows.append({"classifier": label, **summary(rest, smile, threshold)})
    curves[label] = [rest.tolist(), smile.tolist()]
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m offline.report.absolute_bound",
            "floor": {"smiles": FLOOR_SMILES, "rests": FLOOR_RESTS},
            "rows": rows, "learning_curve_rbf_svm_2d": learning, "scores": curves}


def markdown(result: dict) -> str:
    floor = result["floor"]
    lines = [
        "# What an absolute judgement of a still face can do (50 London dev people)",
        "",
        f"{result['date']}, `{result['command']}`. Each person's neutral and smiling photo (MediaPipe landmarks), "
        "judged by a classifier trained on the other 49 people's photos (leave one person out), and by the shipped "
        "uncalibrated models, which never saw a real face. The calibration issue's floors for clips a and c need, "
        f"from one judgement, **{floor['smiles']} of 50 smiles caught with {floor['rests']} resting faces called "
        "a smile**.",
        "",
        "| classifier | ROC AUC | at its threshold: smiles caught / rests called a smile | smiles caught, no rest "
        f"called | rests called, {floor['smiles']} smiles caught | smile above own rest |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['classifier']} | {row['roc_auc']:.3f} | {row['smiles_caught']} / "
                     f"{row['rests_called_smile']} | {row['smiles_caught_with_no_rest_called']} | "
                     f"{row[AT_FLOOR]} | {row['smile_above_own_rest']} |")
    lines += ["", "RBF SVM on the 2-D landmarks, trained on fewer people (mean of "
              f"{LEARNING_DRAWS} draws each; 49: every other person):", "",
              "| training people | ROC AUC | smiles caught, no rest called | rests called, "
              f"{floor['smiles']} smiles caught |", "|---:|---:|---:|---:|"]
    for row in result["learning_curve_rbf_svm_2d"]:
        lines.append(f"| {row['training_people']} | {row['roc_auc']:.3f} | "
                     f"{row['smiles_caught_with_no_rest_called']:.1f} | {row[AT_FLOOR]:.1f} |")
    return "\n".join(lines) + "\n"


def figure(result: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 5.0))
    for label, (rest, smile) in result["scores"].items():
        rest, smile = np.asarray(rest), np.asarray(smile)
        cuts = np.sort(np.r_[rest, smile, np.inf])[::-1]
        ax.step([(rest >= c).sum() for c in cuts], [(smile >= c).sum() for c in cuts], where="post", label=label,
                linestyle="--" if "synthetic" in label else "-")
    floor = result["floor"]
    ax.plot([floor["rests"]], [floor["smiles"]], marker="*", markersize=14, color="black", linestyle="none",
            label="calibration issue's floors a + c")
    ax.set_xlabel("resting faces called a smile (of 50)")
    ax.set_ylabel("smiles caught (of 50)")
    ax.set_xlim(-1, 26)
    ax.set_ylim(0, 51)
    ax.set_title("Absolute judgement of a still face: every threshold")
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_BUNDLE,
                        help="the bundle whose uncalibrated models to show beside the classifiers "
                             "(default: the shipped one)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="results folder (default bench/results)")
    args = parser.parse_args(argv)
    record_or_exit(NAME, args.out, lambda: evaluate(args.model), markdown, figure)


if __name__ == "__main__":
    main()
