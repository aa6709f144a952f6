"""How close the synthetic data comes to real faces, judged only on London dev faces the fit never saw.

``smile_calibration_report``: the synthetic smile (AU6 + AU12 at intensity 1) placed on each held-out face,
against that face's real smile, both normalised from pixels as edgeemo does. For scale, the same numbers
for the mean real smile of the calibration half, which is the best any one smile can do on other people.

``real_smile_transfer_report``: a linear classifier trained only on synthetic sequences (made from the
calibration half's faces) scores real sequences built from the held-out half: each face's neutral photo
morphing into its smiling photo (happiness), and its neutral photo held (neutral).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import lru_cache

import numpy as np
from scipy.optimize import nnls
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edgeemo.emotions import EMOTIONS, NEUTRAL_INDEX, emotion_name
from edgeemo.normalize import normalize_landmarks
from offline.synth import timeline
from offline.synth.action_units import action_unit_fields
from offline.synth.faces import LONDON_DEV_IMAGE_SIZE, calibration_half, face_to_image, holdout_half, real_faces
from offline.synth.generate import generate
from offline.synth.ict import ict_smile_field, ict_smile_parts
from offline.synth.plan import Settings
from offline.synth.render import tracker_jitter
from offline.synth.smile_fit import normalized, place, real_smile_displacements

MOVING_SHARE = 0.25  # landmarks whose mean real displacement is at least this share of the largest one
TRANSFER_SETTINGS = Settings(sequences=480, subjects=60, test_fraction=0.2, windows=("neutral",))
TRANSFER_C = (0.01, 0.1, 1.0)  # inverse regularisation strengths reported side by side, none picked
HAPPINESS = EMOTIONS.index("happiness")


def synthetic_smile_field() -> np.ndarray:
    """float [468, 3]: AU6 + AU12 at intensity 1 on both sides, in the face frame."""
    units = action_unit_fields()
    return (units.fields[units.index("AU6")] + units.fields[units.index("AU12")]).sum(axis=0).astype(np.float64)


def synthetic_smile_displacements(faces: np.ndarray) -> np.ndarray:
    """float [n, 468, 2]: the synthetic smile on London dev faces at ``faces``, in their own head pose."""
    return field_displacements(synthetic_smile_field(), faces)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def closeness(candidate: np.ndarray, real: np.ndarray) -> dict:
    """Compare displacement fields [n, 468, 2] of the same faces: mean fields, per landmark, per face."""
    mean_candidate, mean_real = candidate.mean(axis=0), real.mean(axis=0)
    size_candidate, size_real = np.linalg.norm(mean_candidate, axis=1), np.linalg.norm(mean_real, axis=1)
    moving = size_real >= MOVING_SHARE * size_real.max()
    agreement = (mean_candidate * mean_real).sum(axis=1)[moving] / (size_candidate * size_real)[moving]
    angle = np.degrees(np.arccos(np.clip(agreement, -1.0, 1.0)))
    return {
        "mean_field_cosine": round(_cosine(mean_candidate, mean_real), 4),
        "magnitude_ratio": round(float(np.linalg.norm(mean_candidate) / np.linalg.norm(mean_real)), 4),
        "moving_landmarks": int(moving.sum()),
        "median_direction_error_deg": round(float(np.median(angle)), 2),
        "direction_within_30deg": round(float((angle <= 30.0).mean()), 4),
        "magnitude_correlation": round(float(np.corrcoef(size_candidate, size_real)[0, 1]), 4),
        "per_face_cosine_median": round(float(np.median([_cosine(c, r) for c, r in zip(candidate, real)])), 4),
    }


def field_displacements(field: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """float [n, 468, 2]: a face-frame field [468, 3] on London dev faces at ``faces``, in their own head pose."""
    neutral = real_faces().neutral[faces]
    return normalized(place(neutral, face_to_image(neutral), field)) - normalized(neutral)


def ict_smile_report() -> dict:
    """ICT FaceKit's smile (AU6 + AU12) against the held-out real smiles, beside the fitted smile.

    Also ICT's AU6 + AU12 + AU26 with the three weights least-squares fitted (non-negative) on the calibration
    half: the London smiles part the lips, which AU6 + AU12 alone do not.
    """
    calibration, held_out = calibration_half(), holdout_half()
    real = real_smile_displacements(held_out)
    smile, jaw = ict_smile_parts()
    step = 0.1  # small enough to keep the normalisation near-linear
    design = np.stack([
        (field_displacements(step * part, calibration) / step).ravel() for part in (*smile, jaw)
    ], axis=1)
    weights = nnls(design, real_smile_displacements(calibration).ravel())[0]
    with_jaw = sum(w * part for w, part in zip(weights, (*smile, jaw)))
    return {
        "ict_au6_au12": closeness(field_displacements(ict_smile_field(), held_out), real),
        "ict_au6_au12_au26_fitted": {
            "weights_at_ict_weight_1": dict(zip(("AU6", "AU12", "AU26"), np.round(weights, 4).tolist())),
            **closeness(field_displacements(with_jaw, held_out), real),
        },
        "fitted_smile": closeness(synthetic_smile_displacements(held_out), real),
        "kept": "fitted_smile (closer to the real smiles on cosine and direction error)",
    }


def smile_calibration_report() -> dict:
    calibration, held_out = calibration_half(), holdout_half()
    real = real_smile_displacements(held_out)
    mean_other_people = np.broadcast_to(real_smile_displacements(calibration).mean(axis=0), real.shape)
    return {
        "faces": {"calibration": len(calibration), "held_out": len(held_out)},
        "moving_rule": f"landmarks whose mean real displacement is at least {MOVING_SHARE:.0%} of the largest",
        "held_out": closeness(synthetic_smile_displacements(held_out), real),
        "calibration_fit": closeness(synthetic_smile_displacements(calibration), real_smile_displacements(calibration)),
        "reference_mean_real_smile_of_calibration_faces_on_held_out": closeness(mean_other_people, real),
    }


def real_sequences(faces: np.ndarray, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """X [2n, P, 2, 468] and y [2n]: per face a neutral-to-smiling onset, then its held neutral face.

    The two photos' landmarks are blended in pixels over the frames with a random CK+-like onset timing,
    and the tracker's jitter is added, so that only the faces and their smiles are real.
    """
    real = real_faces()
    pixels_neutral = real.neutral[faces, :, :2] * LONDON_DEV_IMAGE_SIZE
    pixels_smiling = real.smiling[faces, :, :2] * LONDON_DEV_IMAGE_SIZE
    face_px = face_to_image(real.neutral[faces]).scale * LONDON_DEV_IMAGE_SIZE
    sequences, labels = [], []
    for neutral, smiling, size in zip(pixels_neutral, pixels_smiling, face_px):
        share = timeline.onset(rng, frames, 1)[:, :, None]
        for start, end, label in ((neutral, smiling, HAPPINESS), (neutral, neutral, NEUTRAL_INDEX)):
            pixels = start + share * (end - start) + size * tracker_jitter(rng, frames, len(start))
            sequences.append(np.swapaxes(normalize_landmarks(pixels), 1, 2))
            labels.append(label)
    return np.stack(sequences), np.array(labels)


def displacement_features(X: np.ndarray) -> np.ndarray:
    """float [N, 2 * 468]: last frame minus first frame, what a window's expression changed."""
    return (X[:, -1] - X[:, 0]).reshape(len(X), -1)


def real_smile_transfer_report(seed: int = 0, action_units: str = "hand") -> dict:
    """Scores on real sequences of classifiers trained on synthetic ones, at three regularisation strengths.

    Negatives for the AUCs: the real neutral windows, and (harder) unseen synthetic people's other emotions.
    It does not depend on the dataset being made, so it is worked out once per process.
    """
    return copy.deepcopy(_transfer_report(seed, action_units))


@lru_cache(maxsize=2)
def _transfer_report(seed: int, action_units: str = "hand") -> dict:
    settings = replace(TRANSFER_SETTINGS, seed=seed, action_units=action_units)
    synthetic = generate(settings, pool_faces=calibration_half(), progress=False)
    train = synthetic.split == "train"
    others = (synthetic.split == "test") & (synthetic.segment == "onset") & (synthetic.y != HAPPINESS)
    features, labels = displacement_features(synthetic.X[train]), synthetic.y[train]
    X, y = real_sequences(holdout_half(), TRANSFER_SETTINGS.frames, np.random.default_rng(seed))
    real, smiles = displacement_features(X), y == HAPPINESS
    by_strength = {}
    for c in TRANSFER_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        score = model.fit(features, labels == HAPPINESS).predict_proba(real)[:, 1]
        other = model.predict_proba(displacement_features(synthetic.X[others]))[:, 1]
        by_strength[f"C={c}"] = {
            "happiness_recall": round(float((score[smiles] >= 0.5).mean()), 4),
            "neutral_false_alarm_rate": round(float((score[~smiles] >= 0.5).mean()), 4),
            "auc_real_smiles_vs_real_neutral": round(float(roc_auc_score(smiles, score)), 4),
            "auc_real_smiles_vs_synthetic_other_emotions": round(float(
                roc_auc_score(np.r_[np.ones(smiles.sum()), np.zeros(len(other))], np.r_[score[smiles], other])
            ), 4),
        }
    several = make_pipeline(StandardScaler(), LogisticRegression(C=TRANSFER_C[1], max_iter=3000))
    called = several.fit(features, labels).predict(real[smiles])
    return {
        "classifier": "logistic regression on standardised last-minus-first-frame displacement (happiness vs rest)",
        "trained_on": f"{int(train.sum())} synthetic onset and neutral windows made from the calibration half",
        "tested_on": f"{int(smiles.sum())} real neutral-to-smiling onsets and {int((~smiles).sum())} real neutral "
                     f"windows of the held-out half; {int(others.sum())} unseen synthetic other-emotion onsets",
        "by_regularisation": by_strength,
        f"real_smiles_called_by_7_class_model_C={TRANSFER_C[1]}": {
            emotion_name(int(k)): int((called == k).sum()) for k in sorted(set(called.tolist()))
        },
    }
