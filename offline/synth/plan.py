"""What the synthetic dataset holds: its settings, its people, and which window shows whom doing what.

``sequences`` counts onset sequences, spread evenly over the emotions and the people (each person shows
different emotions, as in CK+). Each onset sequence brings one "apex" and one "offset" window of the same
person and emotion when those are asked for; "neutral" windows are as many as the sequences, and at least
one per person. People, not windows, are split into train and test, so that about ``test_fraction``
of the onset sequences are of test people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from edgeemo.calibration import ABSOLUTE, REPRESENTATIONS
from edgeemo.emotions import EMOTIONS, NEUTRAL_INDEX
from edgeemo.errors import EdgeemoError
from offline.synth.unit_sources import check_source

WINDOW_KINDS = ("apex", "offset", "neutral")
# Neutral windows per onset sequence. A live stream is mostly a resting face: with a sixth, the happiness
# model called 31 of 50 real neutral London dev faces happy (bench/real_faces.py), having seen few resting faces.
NEUTRAL_SHARE = 1.0


@dataclass(frozen=True)
class Settings:
    sequences: int = 574
    subjects: int = 120
    test_fraction: float = 87 / 574
    frames: int = 16
    windows: tuple[str, ...] = WINDOW_KINDS
    seed: int = 0
    action_units: str = "hand"  # offline.synth.unit_sources
    representation: str = ABSOLUTE  # or "rest-relative/v1": each window relative to its lead-in's rest (generate)

    def check(self) -> None:
        """Raise EdgeemoError naming the flag of the first bad setting."""
        for flag, value, least in (("--sequences", self.sequences, 1), ("--subjects", self.subjects, 1),
                                   ("--frames", self.frames, 2)):
            if int(value) != value or value < least:
                raise EdgeemoError(f"{flag}: expected an integer of at least {least}, got {value!r}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise EdgeemoError(f"--test-fraction: expected a share in [0, 1), got {self.test_fraction!r}")
        unknown = [w for w in self.windows if w not in WINDOW_KINDS]
        if unknown:
            raise EdgeemoError(
                f"--windows: unknown window {unknown[0]!r} (expected any of {', '.join(WINDOW_KINDS)}, or none)"
            )
        if len(set(self.windows)) != len(self.windows):
            raise EdgeemoError(f"--windows: a window kind is given twice in {','.join(self.windows)}")
        check_source(self.action_units)
        if self.representation not in REPRESENTATIONS:
            raise EdgeemoError(f"--representation: unknown representation {self.representation!r} "
                               f"(expected one of {', '.join(REPRESENTATIONS)})")

    def as_meta(self) -> dict:
        meta = {"sequences": self.sequences, "subjects": self.subjects, "test_fraction": self.test_fraction,
                "frames": self.frames, "windows": list(self.windows), "seed": self.seed}
        if self.action_units != "hand":  # the default's metadata stays as it was before the option
            meta["action_units"] = self.action_units
        if self.representation != ABSOLUTE:  # likewise
            meta["representation"] = self.representation
        return meta


class Window(NamedTuple):
    segment: str  # "onset", "apex", "offset" or "neutral"
    emotion: int  # index into EMOTIONS, or NEUTRAL_INDEX
    person: int


def plan_windows(rng: np.random.Generator, settings: Settings) -> list[Window]:
    people = settings.subjects
    order = rng.permutation(people)
    windows = []
    for k in range(settings.sequences):
        # Person at place i of the round-robin shows emotion (round + i) mod 6: each round is balanced, and
        # a person's rounds give different emotions.
        place, turn = k % people, k // people
        emotion = (turn + place) % len(EMOTIONS)
        person = int(order[place])
        windows.append(Window("onset", emotion, person))
        windows.extend(Window(kind, emotion, person) for kind in ("apex", "offset") if kind in settings.windows)
    if "neutral" in settings.windows:
        count = max(round(settings.sequences * NEUTRAL_SHARE), people)
        windows.extend(Window("neutral", NEUTRAL_INDEX, int(order[k % people])) for k in range(count))
    return windows


def test_people(rng: np.random.Generator, windows: list[Window], settings: Settings) -> np.ndarray:
    """bool [subjects]: the people held out for test, chosen so their onset sequences are closest to the share."""
    onsets = np.bincount([w.person for w in windows if w.segment == "onset"], minlength=settings.subjects)
    test = np.zeros(settings.subjects, dtype=bool)
    if settings.test_fraction == 0.0 or settings.subjects < 2:
        return test
    order = rng.permutation(settings.subjects)
    held = np.cumsum(onsets[order])[: settings.subjects - 1]  # at least one person stays in train
    take = int(np.argmin(np.abs(held - settings.test_fraction * settings.sequences))) + 1
    test[order[:take]] = True
    return test
