"""Ground truth of the synthetic set: for each emotion, its action units and the landmarks they move.

The rule: take the mean neutral face, frontal, move it by the emotion's typical units (those at least half
its samples show) at their mean apex intensity, film it and normalise it like any frame; a landmark is moved
when its normalised displacement is at least SHARE_OF_LARGEST of the emotion's largest one and at least
FLOOR (above the tracker's RMS jitter per landmark, sqrt(2) * 0.0025 = 0.0035 face heights). An attribution
ranking (e.g. the paper's global Integrated Gradients) can be scored against these sets.
"""

from __future__ import annotations

import numpy as np

from edgeemo.emotions import EMOTIONS
from edgeemo.normalize import normalize_landmarks
from offline.synth.action_units import NAMES
from offline.synth.expressions import RECIPES, TYPICAL, expected_apex, typical_units
from offline.synth.faces import canonical_face
from offline.synth.render import IMAGE_HEIGHT, IMAGE_WIDTH
from offline.synth.unit_sources import unit_fields

SHARE_OF_LARGEST = 0.2
FLOOR = 0.004  # face heights
FACE_PX = 250.0  # any size works: the normalisation removes it


def normalized_displacement(field: np.ndarray) -> np.ndarray:
    """float [468, 2]: where a face-frame field [468, 3] moves the frontal mean face's normalised landmarks."""
    face = canonical_face()
    centre = np.array([IMAGE_WIDTH / 2, IMAGE_HEIGHT / 2])
    before = normalize_landmarks(centre + FACE_PX * face[:, :2])
    after = normalize_landmarks(centre + FACE_PX * (face + field)[:, :2])
    return (after - before).astype(np.float64)


def moved_landmarks(field: np.ndarray) -> list[int]:
    size = np.linalg.norm(normalized_displacement(field), axis=1)
    return np.flatnonzero(size >= max(SHARE_OF_LARGEST * size.max(), FLOOR)).tolist()


def emotion_field(emotion: str, source: str = "hand") -> np.ndarray:
    """float [468, 3]: the face-frame field of the emotion's typical units at their mean apex intensity."""
    return np.tensordot(expected_apex(emotion), unit_fields(source).fields.sum(axis=1), axes=1)


def ground_truth(source: str = "hand") -> dict:
    """The truth of data made with action units from ``source`` (offline.synth.unit_sources)."""
    units = unit_fields(source)
    emotions = {}
    for emotion in EMOTIONS:
        landmarks = moved_landmarks(emotion_field(emotion, source))
        emotions[emotion] = {
            "action_units": list(typical_units(emotion)),
            "other_action_units": {i.code: i.probability for i in RECIPES[emotion] if i.probability < TYPICAL},
            "landmarks": landmarks,
            "n_landmarks": len(landmarks),
        }
    return {
        "rule": (
            f"an emotion's landmarks are those whose normalised displacement, on the frontal mean face at the mean "
            f"apex of the emotion's typical action units (shown by at least {TYPICAL:.0%} of its samples), is at "
            f"least {SHARE_OF_LARGEST:.0%} of the largest and at least {FLOOR} face heights (RMS tracker jitter "
            f"is 0.0035)"
        ),
        "emotions": emotions,
        "action_units": {
            code: {"name": NAMES[code], "landmarks": moved_landmarks(units.fields[units.index(code)].sum(axis=0))}
            for code in units.codes
        },
    }
