"""How strongly things happen over the frames of one sequence: expression envelopes, blinks, speech.

An envelope is float [frames, units]: the share of each unit's apex intensity at each frame.
  onset    neutral at first, apex at the last frame (as CK+): each unit rises with its own delay and shape
  apex     held for the whole window, with small fluctuations
  offset   apex at first, released so that the last third of the window is neutral
  neutral  nothing
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

CAMERA_FPS = 30.0
FLUCTUATION = 0.05  # relative size of the wobble of a held expression
OFFSET_NEUTRAL_FROM = 2.0 / 3.0  # an offset window is neutral from here to its end


def smooth_noise(rng: np.random.Generator, frames: int, size: int, correlation: float) -> np.ndarray:
    """float [frames, size]: unit-variance noise correlated in time (an AR(1) process, started stationary)."""
    white = rng.standard_normal((frames, size))
    gain = np.sqrt(1.0 - correlation**2)
    white[0] /= gain  # so that the first frame already has unit variance
    return lfilter([gain], [1.0, -correlation], white, axis=0)


def ease(progress: np.ndarray, shape: str, power: float) -> np.ndarray:
    """Map progress in [0, 1] to a rise in [0, 1]: smooth S, slow start (ease-in) or fast start (ease-out)."""
    p = np.clip(progress, 0.0, 1.0)
    if shape == "ease-in":
        return p**power
    if shape == "ease-out":
        return 1.0 - (1.0 - p) ** power
    return p * p * (3.0 - 2.0 * p)


def _wobble(rng: np.random.Generator, frames: int, units: int) -> np.ndarray:
    return 1.0 + FLUCTUATION * smooth_noise(rng, frames, units, 0.9)


def onset(rng: np.random.Generator, frames: int, units: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)[:, None]
    start = rng.uniform(0.0, 0.3) + rng.uniform(-0.05, 0.05, units)
    reach = np.minimum(rng.uniform(0.7, 1.0) + rng.uniform(-0.05, 0.05, units), 1.0)
    reach = np.maximum(reach, start + 0.2)  # every unit rises over at least a fifth of the sequence
    rise = ease((t - start) / (reach - start), rng.choice(["smooth", "ease-in", "ease-out"]), rng.uniform(1.5, 2.5))
    envelope = rise * _wobble(rng, frames, units)
    envelope[-1] = 1.0  # CK+ sequences end on the apex frame
    return envelope


def apex(rng: np.random.Generator, frames: int, units: int) -> np.ndarray:
    return _wobble(rng, frames, units)


def offset(rng: np.random.Generator, frames: int, units: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)[:, None]
    release = rng.uniform(0.0, 0.3) + rng.uniform(0.0, 0.05, units)
    gone = np.minimum(rng.uniform(0.5, OFFSET_NEUTRAL_FROM) + rng.uniform(-0.05, 0.0, units), OFFSET_NEUTRAL_FROM)
    fall = ease((t - release) / (gone - release), rng.choice(["smooth", "ease-in", "ease-out"]), rng.uniform(1.5, 2.5))
    envelope = (1.0 - fall) * _wobble(rng, frames, units)
    envelope[t[:, 0] >= OFFSET_NEUTRAL_FROM] = 0.0
    return envelope


def neutral(rng: np.random.Generator, frames: int, units: int) -> np.ndarray:
    return np.zeros((frames, units))


ENVELOPES = {"onset": onset, "apex": apex, "offset": offset, "neutral": neutral}


def blinks(rng: np.random.Generator, frames: int, per_second: float) -> np.ndarray:
    """float [frames]: eyelid closure in [0, 1]; blinks last 130-300 ms, closing faster than they open."""
    closure = np.zeros(frames)
    t = np.arange(frames)
    for _ in range(rng.poisson(per_second * frames / CAMERA_FPS)):
        start = rng.uniform(-4.0, frames)
        closing, opening = rng.uniform(1.5, 3.0), rng.uniform(2.5, 6.0)  # frames
        rise = np.clip((t - start) / closing, 0.0, 1.0)
        fall = np.clip(1.0 - (t - start - closing) / opening, 0.0, 1.0)
        closure = np.maximum(closure, rng.uniform(0.7, 1.0) * np.minimum(rise, fall))
    return closure


def speech(rng: np.random.Generator, frames: int) -> np.ndarray:
    """float [frames]: how far the mouth opens while talking (3-6 syllables a second), 0 to 0.35."""
    t = np.arange(frames) / CAMERA_FPS
    rate = rng.uniform(3.0, 6.0)
    opening = 0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    loudness = np.clip(1.0 + 0.3 * smooth_noise(rng, frames, 1, 0.9)[:, 0], 0.0, None)
    return rng.uniform(0.1, 0.35) * opening * loudness
