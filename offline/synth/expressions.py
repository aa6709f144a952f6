"""Which action units each emotion shows, how often and how strongly (the apex of one expression).

The prototypes are FACS's (happiness AU6+12; sadness AU1+4+15; surprise AU1+2+5+26; fear AU1+2+4+5+7+20+26;
anger AU4+5+7+23; disgust AU9+15+16, often with AU10). Real faces rarely show a full prototype: units are
missing or weak, and neighbouring emotions share units. So fear's AU4, AU7 and AU20 are often absent or weak
(which makes a fear look like a surprise), surprise now and then stretches the lips a little, disgust often
lowers the brows (AU4) and narrows the eyes (AU7), and anger now and then wrinkles the nose (AU9/AU10).
Smiles range from faint to broad, as the 50 real London dev smiles do (their size along the mean smile spans
about 0.15 to 2 times the mean, 5th to 95th percentile).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edgeemo.emotions import EMOTIONS
from offline.synth.action_units import ACTION_UNITS


class Ingredient(NamedTuple):
    code: str
    probability: float  # share of this emotion's samples that show the unit
    low: float  # apex intensity range when shown (1 = the unit's full field), drawn log-uniformly
    high: float

    @property
    def mean(self) -> float:
        return (self.high - self.low) / np.log(self.high / self.low)


RECIPES: dict[str, tuple[Ingredient, ...]] = {
    "anger": (
        Ingredient("AU4", 1.0, 0.6, 1.2), Ingredient("AU5", 0.5, 0.3, 0.9), Ingredient("AU7", 0.8, 0.5, 1.2),
        Ingredient("AU23", 0.6, 0.4, 1.2), Ingredient("AU9", 0.4, 0.3, 0.8), Ingredient("AU10", 0.4, 0.3, 0.8),
    ),
    "disgust": (
        Ingredient("AU9", 0.75, 0.4, 1.2), Ingredient("AU10", 0.55, 0.3, 1.0), Ingredient("AU15", 0.6, 0.3, 0.9),
        Ingredient("AU16", 0.5, 0.3, 0.9), Ingredient("AU4", 0.45, 0.3, 1.0), Ingredient("AU7", 0.45, 0.3, 0.9),
        Ingredient("AU23", 0.15, 0.2, 0.5), Ingredient("AU26", 0.15, 0.1, 0.3),
    ),
    "fear": (
        Ingredient("AU1", 0.95, 0.5, 1.1), Ingredient("AU2", 0.8, 0.4, 1.0), Ingredient("AU4", 0.5, 0.1, 0.5),
        Ingredient("AU5", 0.9, 0.5, 1.1), Ingredient("AU7", 0.5, 0.2, 0.6), Ingredient("AU20", 0.6, 0.2, 0.8),
        Ingredient("AU26", 0.8, 0.3, 1.0),
    ),
    "happiness": (
        Ingredient("AU6", 0.85, 0.3, 1.6), Ingredient("AU12", 1.0, 0.3, 2.0), Ingredient("AU26", 0.25, 0.1, 0.4),
    ),
    "sadness": (
        Ingredient("AU1", 0.9, 0.5, 1.1), Ingredient("AU4", 0.8, 0.4, 1.0), Ingredient("AU15", 0.9, 0.6, 1.2),
        Ingredient("AU7", 0.15, 0.2, 0.4),
    ),
    "surprise": (
        Ingredient("AU1", 0.95, 0.6, 1.2), Ingredient("AU2", 0.95, 0.6, 1.2), Ingredient("AU5", 0.8, 0.4, 1.1),
        Ingredient("AU26", 0.9, 0.5, 1.2), Ingredient("AU20", 0.15, 0.1, 0.3),
    ),
}
TYPICAL = 0.5  # a unit is typical of an emotion (and in its ground truth) when at least half its samples show it
ASYMMETRY = 0.12  # log-ratio spread between the two sides' intensities of a unit


def typical_units(emotion: str) -> tuple[str, ...]:
    return tuple(i.code for i in RECIPES[emotion] if i.probability >= TYPICAL)


def expected_apex(emotion: str) -> np.ndarray:
    """float [A]: each unit's mean apex intensity for ``emotion``, counting only its typical units."""
    intensity = np.zeros(len(ACTION_UNITS))
    for i in RECIPES[emotion]:
        if i.probability >= TYPICAL:
            intensity[ACTION_UNITS.index(i.code)] = i.mean
    return intensity


def draw_apex(rng: np.random.Generator, emotion: int, gains: np.ndarray) -> np.ndarray:
    """float [A, 2]: right- and left-side apex intensities of one expression of EMOTIONS[emotion].

    ``gains`` [A] is how strongly this person moves each unit. At least half of the typical units show, so
    that no sample of an emotion is a blank face.
    """
    recipe = RECIPES[EMOTIONS[emotion]]
    units = np.array([ACTION_UNITS.index(i.code) for i in recipe])
    probability = np.array([i.probability for i in recipe])
    typical = probability >= TYPICAL
    shown = rng.random(len(recipe)) < probability
    while shown[typical].sum() * 2 < typical.sum():
        shown = rng.random(len(recipe)) < probability
    level = np.exp(rng.uniform(np.log([i.low for i in recipe]), np.log([i.high for i in recipe])))
    level *= shown * gains[units]
    tilt = np.exp(rng.normal(0.0, ASYMMETRY, size=len(recipe)))
    apex = np.zeros((len(ACTION_UNITS), 2))
    apex[units] = level[:, None] * np.stack([tilt, 1.0 / tilt], axis=1)
    return apex
