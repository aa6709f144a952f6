"""``edgeemo explain``: global Integrated Gradients (the paper's section 3.3) over a trained run.

For each emotion e, with each of e's trained 468-landmark models (``models``: all, the default, one per seed;
or best, the seed with the best validation score):
  1. baselines, a choice:
       neutral    (default) each sample's own first frame, held for all P frames: the same face at rest just
                  before the expression (onsets start at rest, as CK+'s do)
       medoid     the paper's: one typical training sequence of each of the other five emotions, the onset
                  closest to its emotion's mean onset
       confident  like medoid, but the onset e's model scores lowest
  2. IG of every training onset sequence of e against its baseline(s) (offline.explain.integrated_gradients; with
     ``refine``, the default, paths whose attributions miss F(x) - F(x') by more than 1 % get more nodes);
  3. one score per landmark, a choice:
       evidence   (default) the landmark's IG summed over frames and coordinates: its share of F(x) - F(x'),
                  positive when its movement raises P(e)
       magnitude  the paper's: |IG| summed over frames and coordinates
     averaged over the samples, then over the baselines, then over the models;
  4. the 468 landmarks ranked by that score.
Why all seeds by default: one model's scores carry its own quirks. On the built-in data each of three seeds
ranks some emotion below 0.8 precision@64 against the truth, their average none (README, "Fidelity").
Why the defaults differ from the paper: against another emotion's sequence, IG credits every movement that
tells the sample from that emotion, and a one-against-the-rest model uses the other emotions' movements as
evidence against; |IG| then ranks them as high as e's own. On the built-in data, where the landmarks each
emotion moves are known, neutral + evidence puts far more of them in the top 64 (README, "Fidelity").
The paper says "each input sample in the training set"; against baselines of other emotions only e's own
samples carry signal (for the rest F(x) and F(x') are both near 0), so its samples are e's onsets, as
CK+'s sequences are. Results go to RUN/explain/<arch>/: ranking.json (the ranking file that ``edgeemo
train --landmarks`` and ``edgeemo select`` read), scores.npz, and one part file per emotion and model (resumable).

Whose data a ranking is made from: a seed's model was trained on its training people (and stopped on its
validation people), and is explained on its training onsets. ranking.json names those people (``subjects``)
and also holds each seed's ranking from its own model alone, with its own people (``seeds``). Training at
K < 468 (``edgeemo select``) gives each seed's models a ranking none of whose people that seed is tested on
(offline.training.landmark_subsets.rankings_for_seeds): with a fixed split (every seed tested on the same
people, trained on the others) the seed-averaged ranking; without one (each seed draws its own test people,
so one seed's training people are another's test people) each seed's own. Otherwise accuracy against K
would be scored on people whose movements chose the landmarks, and look better than it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS
from edgeemo.io import atomic_save_npz, atomic_write_json
from offline.data.splits import Split
from offline.explain.integrated_gradients import RULES, IntegratedGradients
from offline.export.export import best_job, finished_seeds, open_trained_run
from offline.training.run_folder import RunFolder

OTHER_EMOTION_BASELINES = ("medoid", "confident")  # the paper's: a typical sequence of each other emotion
BASELINE_CHOICES = ("neutral",) + OTHER_EMOTION_BASELINES
SCORE_CHOICES = ("evidence", "magnitude")
MODEL_CHOICES = ("all", "best")  # every seed's 468-landmark model, scores averaged; or the best-validation one


def explain_dir(run: RunFolder, arch: str) -> Path:
    return run.root / "explain" / arch


def ranking_path(run: RunFolder, arch: str) -> Path:
    return explain_dir(run, arch) / "ranking.json"


def choose_baselines(x: np.ndarray, y: np.ndarray, emotion: int, how: str, scores: np.ndarray | None = None) -> np.ndarray:
    """Indices into ``x`` of one typical sequence of each other emotion (EMOTIONS order, e skipped)."""
    if how not in OTHER_EMOTION_BASELINES:
        raise EdgeemoError(f"--baseline: unknown choice {how!r} (expected {' or '.join(OTHER_EMOTION_BASELINES)})")
    chosen = []
    for other in range(len(EMOTIONS)):
        if other == emotion:
            continue
        members = np.flatnonzero(y == other)
        if not len(members):
            raise EdgeemoError(f"training data: no onset sequence of {EMOTIONS[other]} to use as a baseline")
        if how == "medoid":
            flat = x[members].reshape(len(members), -1)
            chosen.append(members[np.argmin(((flat - flat.mean(0)) ** 2).sum(1))])
        else:
            chosen.append(members[np.argmin(scores[members])])
    return np.asarray(chosen)


def neutral_baselines(x: np.ndarray) -> np.ndarray:
    """Each sequence's first frame held for all its frames: [n, P, ...] like ``x``."""
    return np.repeat(x[:, :1], x.shape[1], axis=1)


def landmark_scores(attributions: np.ndarray, score: str = "evidence") -> np.ndarray:
    """IG [n, P, 2, L(, 1)] summed over frames and coordinates (``magnitude``: of |IG|), averaged over samples: [L]."""
    a = attributions.reshape(attributions.shape[:4])
    return (np.abs(a) if score == "magnitude" else a).sum(axis=(1, 2)).mean(axis=0)


def explain_emotion(model, x_train: np.ndarray, y_train: np.ndarray, emotion: int, *, steps: int | str,
                    rule: str, baseline: str, score: str = "evidence", refine: bool = True) -> dict[str, np.ndarray]:
    """The global procedure for one emotion on its training onsets ``x_train`` [n, P, 2, 468]."""
    ig = IntegratedGradients(model)
    own = x_train[y_train == emotion][..., None]
    if not len(own):
        raise EdgeemoError(f"training data: no onset sequence of {EMOTIONS[emotion]} to explain")
    if baseline == "neutral":
        baselines, starts = np.empty(0, dtype=np.int64), [neutral_baselines(own)]
    else:
        probability = ig.probability(x_train[..., None]) if baseline == "confident" else None
        baselines = choose_baselines(x_train, y_train, emotion, baseline, probability)
        starts = [x_train[b][..., None] for b in baselines]
    per_baseline, median, worst, used_steps, refined, most_nodes = [], [], [], [], [], []
    for start in starts:
        result = ig.attribute_checked(own, start, steps=steps, rule=rule, refine=refine)
        per_baseline.append(landmark_scores(result.attributions, score))
        errors = result.completeness_error
        median.append(np.median(errors))
        worst.append(errors.max())
        used_steps.append(result.steps)
        refined.append(result.refined)
        most_nodes.append(result.nodes.max())
    per_baseline = np.stack(per_baseline)
    return {"scores": per_baseline.mean(axis=0), "per_baseline": per_baseline, "baselines": baselines,
            "completeness_median": np.array(median), "completeness_worst": np.array(worst),
            "steps": np.array(used_steps), "samples": np.array(len(own)),
            "refined": np.array(refined), "most_nodes": np.array(most_nodes)}


def explain_run(run_dir: str | Path, data: str | Path, *, arch: str = "t-emo", steps: int | str = 64,
                rule: str = "riemann_right", baseline: str = "neutral", score: str = "evidence",
                models: str = "all", refine: bool = True, progress: bool = True) -> dict:
    """Rank the landmarks of every emotion with the run's 468-landmark models; returns ranking.json's content."""
    if rule not in RULES:
        raise EdgeemoError(f"--rule: unknown integration rule {rule!r} (expected one of {', '.join(RULES)})")
    if baseline not in BASELINE_CHOICES:
        raise EdgeemoError(f"--baseline: unknown choice {baseline!r} (expected {', '.join(BASELINE_CHOICES)})")
    if score not in SCORE_CHOICES:
        raise EdgeemoError(f"--score: unknown choice {score!r} (expected {' or '.join(SCORE_CHOICES)})")
    if models not in MODEL_CHOICES:
        raise EdgeemoError(f"--models: unknown choice {models!r} (expected {' or '.join(MODEL_CHOICES)})")
    run, _, dataset = open_trained_run(run_dir, data)
    out = explain_dir(run, arch)
    jobs = {e: finished_seeds(run, arch, N_LANDMARKS, e) if models == "all" else [best_job(run, arch, N_LANDMARKS, e)]
            for e in EMOTIONS}
    refined = "-refined" if refine else ""
    parts, own = {}, {}  # own: each seed's ranking from its model alone
    with tqdm(total=sum(map(len, jobs.values())), desc=f"explain {arch}", unit="model", disable=not progress) as bar:
        for emotion in EMOTIONS:
            per_seed = []
            for job in jobs[emotion]:
                part = out / "parts" / f"{emotion}-seed{job.seed}-{rule}-{steps}{refined}-{baseline}-{score}.npz"
                if part.is_file():
                    with np.load(part) as saved:
                        per_seed.append({k: saved[k] for k in saved.files})
                else:
                    split = Split.from_json(run.read_json(run.split_path(job.seed)))
                    onsets = split.train[dataset.segment[split.train] == "onset"]
                    per_seed.append(explain_emotion(
                        run.load_model(job), dataset.X[onsets], dataset.y[onsets], EMOTIONS.index(emotion),
                        steps=steps, rule=rule, baseline=baseline, score=score, refine=refine,
                    ))
                    atomic_save_npz(part, **per_seed[-1])
                bar.update()
            parts[emotion] = _pool_seeds(per_seed)
            for job, part in zip(jobs[emotion], per_seed):
                own.setdefault(job.seed, {})[emotion] = np.argsort(-part["scores"], kind="stable").tolist()
    scores = np.stack([parts[e]["scores"] for e in EMOTIONS])
    # Each emotion's scores under each of its models on their own: a run still training may have more seeds of one.
    atomic_save_npz(out / "scores.npz", scores=scores, **{f"per_seed_{e}": parts[e]["per_seed"] for e in EMOTIONS},
                    per_baseline=np.stack([parts[e]["per_baseline"] for e in EMOTIONS]),
                    completeness_median=np.stack([parts[e]["completeness_median"] for e in EMOTIONS]),
                    completeness_worst=np.stack([parts[e]["completeness_worst"] for e in EMOTIONS]))
    people = {seed: _model_people(run, dataset, seed) for seed in sorted(own)}
    ranking = {
        "emotions": {e: np.argsort(-scores[i], kind="stable").tolist() for i, e in enumerate(EMOTIONS)},
        "settings": {"arch": arch, "steps": steps, "rule": rule, "refine": refine, "baseline": baseline,
                     "score": score, "models": models, "samples": "training onsets"},
        "models": {e: [job._asdict() for job in jobs[e]] for e in EMOTIONS},
        "subjects": sorted(set().union(*people.values())),
        "seeds": {str(seed): {"emotions": own[seed], "subjects": people[seed]} for seed in sorted(own)},
        "completeness": {e: {"median": float(np.median(parts[e]["completeness_median"])),
                             "worst": float(parts[e]["completeness_worst"].max()),
                             "steps": int(parts[e]["steps"].max()), "models": len(jobs[e]),
                             "samples": int(parts[e]["samples"]), "paths": int(parts[e]["paths"]),
                             "refined": int(parts[e]["refined"].sum()), "most_nodes": int(parts[e]["most_nodes"].max())}
                         for e in EMOTIONS},
    }
    atomic_write_json(ranking_path(run, arch), ranking)
    return ranking


def _model_people(run: RunFolder, dataset, seed: int) -> list[str]:
    """Whose windows seed ``seed``'s models saw: its training people (trained on, explained) and validation
    people (early stopping)."""
    split = Split.from_json(run.read_json(run.split_path(seed)))
    return sorted(set(dataset.subject[np.concatenate([split.train, split.val])].tolist()))


def _pool_seeds(per_seed: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One emotion's parts from several seeds' models: scores averaged over seeds, completeness over all paths."""
    stacked = {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0]}
    return {"scores": stacked["scores"].mean(0), "per_seed": stacked["scores"],
            "per_baseline": stacked["per_baseline"].mean(0),
            "completeness_median": stacked["completeness_median"].ravel(),
            "completeness_worst": stacked["completeness_worst"].ravel(),
            "steps": stacked["steps"].ravel(), "samples": stacked["samples"].sum(),
            "paths": sum(int(p["samples"]) * len(p["completeness_median"]) for p in per_seed),
            "refined": stacked["refined"].ravel(), "most_nodes": stacked["most_nodes"].ravel()}
