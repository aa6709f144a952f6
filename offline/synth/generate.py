"""Render the planned windows into a LandmarkDataset, the same way real landmarks become one.

Per window: the person's neutral face, moved by the action units' fields over time (plus blinks, idle
twitches and, in some neutral windows, speech), filmed by the virtual camera (pixels, NaN where the face was
lost), normalised by ``edgeemo.normalize`` from pixels, gaps filled by ``offline.data.sequence.fill_missing``;
then an onset is resampled to P frames (as CK+ imports are) and a live window keeps every FRAME_STRIDE-th of
its P * FRAME_STRIDE camera frames (as the runtime does).

Rest-relative data (``Settings.representation`` "rest-relative/v1", docs/calibration.md): each window is filmed
after a lead-in of the same person at rest (LEAD_IN_S seconds of the neutral face with blinks and idle twitches,
no speech; a posed lead-in before an onset), in the same ``film`` call, so camera, face size, perspective, head
pose and jitter carry on from one to the other. The runtime's own estimator (edgeemo.calibration.RestEstimator)
runs over the lead-in's normalised frames and its rest, errors included, never the true one, turns the window
into ``rest_relative(face, rest, canonical face)``. In TURN_SHARE of the live windows the head turns between
the lead-in and the window: a turn after calibration is not an expression.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from edgeemo.calibration import ABSOLUTE, RestEstimator, RestSettings, canonical_face, rest_relative
from edgeemo.emotions import EMOTIONS, NEUTRAL_INDEX
from edgeemo.normalize import NORMALIZATION, normalize_landmarks
from offline.data.dataset import LandmarkDataset
from offline.data.sequence import fill_missing, resample
from offline.synth import timeline
from offline.synth.action_units import ActionUnitFields
from offline.synth.expressions import draw_apex
from offline.synth.faces import ATTRIBUTION, real_faces
from offline.synth.ict import ATTRIBUTION as ICT_ATTRIBUTION
from offline.synth.ict import ict_identities
from offline.synth.identities import identity_pool, make_identities
from offline.synth.plan import Settings, Window, plan_windows, test_people
from offline.synth.render import SETUPS, film
from offline.synth.unit_sources import unit_fields

GENERATOR = "edgeemo.synth/1"
FRAME_STRIDE = 2  # the runtime fills P * 2 camera frames at ~30 fps and keeps every second one
CAMERA_FPS = 30.0  # the synthetic camera's rate: windows step FRAME_STRIDE / CAMERA_FPS seconds
ONSET_FRAMES = (10, 60)  # camera frames from neutral to apex in CK+
GAIN_SPREAD = 0.2  # log-spread of how strongly people move each unit
BLINKS_PER_SECOND = {"posed": 0.1, "live": 0.3}  # people posing for CK+ blink less than at a webcam
IDLE = 0.08  # largest intensity of the small involuntary movements in every window
SPEECH_SHARE = 0.35  # neutral windows in which the person talks
ICT_PEOPLE_SHARE = 0.5  # with --action-units ict, people drawn from ICT's identity model (the rest London-made)
# Rest-relative windows only:
LEAD_IN_S = (1.5, 3.0)  # seconds at rest filmed before each window (uniform): the estimator bootstraps on 1 s
TURN_SHARE = 0.3  # live windows in which the head turns between the lead-in and the window
TURN_DEG = 20.0  # the turn's yaw change is uniform in +-TURN_DEG (the runtime benchmark turns heads +-20 degrees)
TURN_S = 0.5  # the turn is ramped over the lead-in's last TURN_S seconds, then held through the window
NO_VETO = np.zeros(len(EMOTIONS))  # the "uncalibrated scores" offline: lead-ins are rest by construction


class Person(NamedTuple):
    face: np.ndarray  # float [468, 3], neutral, face frame
    gains: np.ndarray  # float [A]


class Rendered(NamedTuple):
    X: np.ndarray  # float32 [P, 2, 468]
    camera_frames: int  # filmed, the lead-in's included
    lost_frames: int
    rest: np.ndarray | None = None  # float32 [468, 2]: the estimator's rest from the lead-in (rest-relative only)
    rest_how: str | None = None  # how the estimator set it: "auto" (bootstrap) or "set" (set_now, see lead_in_rest)


def make_people(rng: np.random.Generator, count: int, pool_faces: np.ndarray, units: int,
                ict_share: float = 0.0) -> list[Person]:
    shapes = make_identities(rng, count, identity_pool(pool_faces))
    if ict_share > 0.0:  # drawn after the London shapes, so the hand source's people stay as they were
        from_ict = rng.random(count) < ict_share
        shapes[from_ict] = ict_identities(rng, int(from_ict.sum()))
    gains = np.exp(rng.normal(0.0, GAIN_SPREAD, size=(count, units)))
    return [Person(s, g) for s, g in zip(shapes, gains)]


def intensities(rng: np.random.Generator, window: Window, person: Person, frames: int,
                units: ActionUnitFields) -> np.ndarray:
    """float [frames, A, 2]: every unit's intensity on each side at each camera frame."""
    count = len(units.codes)
    apex = draw_apex(rng, window.emotion, person.gains) if window.emotion != NEUTRAL_INDEX else np.zeros((count, 2))
    level = timeline.ENVELOPES[window.segment](rng, frames, count)[:, :, None] * apex
    add_twitches(rng, level)
    if window.segment == "neutral" and rng.random() < SPEECH_SHARE:
        talk = timeline.speech(rng, frames)
        level[:, units.index("AU26"), :] += talk[:, None]
        level[:, units.index("AU23"), :] += 0.5 * talk[:, None]
    return level


def add_twitches(rng: np.random.Generator, level: np.ndarray) -> None:
    """Add to ``level`` [frames, A, 2] the small involuntary movements of one or two units."""
    frames, count = level.shape[:2]
    twitching = rng.choice(count, size=rng.integers(1, 3), replace=False)
    twitch = np.clip(0.5 * timeline.smooth_noise(rng, frames, len(twitching), 0.9), 0.0, 1.0)
    level[:, twitching, :] += (IDLE * rng.uniform(0.0, 1.0, len(twitching)) * twitch)[:, :, None]


def moved_faces(person: Person, units: ActionUnitFields, level: np.ndarray, closure: np.ndarray) -> np.ndarray:
    """float [frames, 468, 3]: the person's face moved by unit intensities [frames, A, 2] and eyelid closure [frames]."""
    frames = len(level)
    fields = units.fields.reshape(-1, units.fields.shape[2] * 3)  # [A * 2, 468 * 3]
    moved = person.face + (level.reshape(frames, -1) @ fields).reshape(frames, -1, 3)
    moved += closure[:, None, None] * units.blink
    return moved


def render_window(rng: np.random.Generator, window: Window, person: Person, frames: int,
                  units: ActionUnitFields, representation: str = ABSOLUTE) -> Rendered:
    setup_name = "posed" if window.segment == "onset" else "live"
    camera_frames = (
        int(round(np.exp(rng.uniform(*np.log(ONSET_FRAMES))))) if window.segment == "onset" else frames * FRAME_STRIDE
    )
    if representation != ABSOLUTE:
        return render_rest_relative(rng, window, person, frames, units, setup_name, camera_frames)
    level = intensities(rng, window, person, camera_frames, units)
    closure = timeline.blinks(rng, camera_frames, BLINKS_PER_SECOND[setup_name])
    pixels, lost = film(rng, moved_faces(person, units, level, closure), SETUPS[setup_name])
    points = fill_missing(normalize_landmarks(pixels), where=f"synthetic {window.segment} window")
    points = resample(points, frames) if window.segment == "onset" else points[::FRAME_STRIDE]
    return Rendered(np.swapaxes(points, 1, 2).astype(np.float32), camera_frames, int(lost.sum()))


def render_rest_relative(rng: np.random.Generator, window: Window, person: Person, frames: int,
                         units: ActionUnitFields, setup_name: str, camera_frames: int) -> Rendered:
    """The window filmed after a lead-in at rest, relative to the rest the runtime's estimator finds in it."""
    lead = int(round(rng.uniform(*LEAD_IN_S) * CAMERA_FPS))
    rest_level = np.zeros((lead, len(units.codes), 2))
    add_twitches(rng, rest_level)  # blinks and twitches, no speech: a face at rest
    at_rest = moved_faces(person, units, rest_level, timeline.blinks(rng, lead, BLINKS_PER_SECOND[setup_name]))
    level = intensities(rng, window, person, camera_frames, units)
    moving = moved_faces(person, units, level, timeline.blinks(rng, camera_frames, BLINKS_PER_SECOND[setup_name]))
    turn = head_turn(rng, lead, camera_frames) if setup_name == "live" and rng.random() < TURN_SHARE else None
    pixels, lost = film(rng, np.concatenate([at_rest, moving]), SETUPS[setup_name], turn)
    points = fill_missing(normalize_landmarks(pixels), where=f"synthetic {window.segment} window and its lead-in")
    rest, how = lead_in_rest(points[:lead])
    points = rest_relative(points[lead:], rest, canonical_face())
    points = resample(points, frames) if window.segment == "onset" else points[::FRAME_STRIDE]
    return Rendered(np.swapaxes(points, 1, 2).astype(np.float32), lead + camera_frames, int(lost.sum()), rest, how)


def head_turn(rng: np.random.Generator, lead: int, frames: int) -> np.ndarray:
    """Radians [lead + frames, 3]: a yaw change uniform in +-TURN_DEG, eased in over the lead-in's last TURN_S
    seconds and held through the window's ``frames``."""
    ramp = int(round(TURN_S * CAMERA_FPS))
    progress = timeline.ease((np.arange(lead + frames) - (lead - ramp)) / ramp, "smooth", 1.0)
    turn = np.zeros((lead + frames, 3))
    turn[:, 0] = np.radians(rng.uniform(-TURN_DEG, TURN_DEG)) * progress
    return turn


def lead_in_rest(points: np.ndarray, settings: RestSettings = RestSettings()) -> tuple[np.ndarray, str]:
    """The rest [468, 2] the runtime's estimator finds in lead-in frames [L, 468, 2] (at CAMERA_FPS), and how.

    Offline there is no uncalibrated model to veto a frame, and none is needed: a lead-in is rest by
    construction, so every frame's scores are zeros (never a veto) and the estimator's stillness test alone
    decides, as it does at the runtime for a face that shows no expression. No calibrated verdict is given
    (``neutral=None``): the rest is the bootstrap's, not followed (a lead-in is far shorter than follow_s).
    A lead-in that is never still for bootstrap_s (a blink or lost frame in each second, a moving head) takes
    its last bootstrap_s as the rest (``set_now`` at its last frame), as a user saying "this is rest now" would.
    """
    estimator = RestEstimator(points.shape[1], settings)
    for i, face in enumerate(points):
        if estimator.observe(face, i / CAMERA_FPS, scores=NO_VETO, neutral=None):
            break  # without neutral verdicts nothing moves the rest after this
    if not estimator.calibrated:
        estimator.set_now((len(points) - 1) / CAMERA_FPS)
    return estimator.rest, estimator.how


def generate(settings: Settings, pool_faces: np.ndarray | None = None, progress: bool = True) -> LandmarkDataset:
    """The dataset of ``settings`` (checked first); people are made from London dev faces ``pool_faces``."""
    settings.check()
    pool_faces = np.arange(len(real_faces().face_id)) if pool_faces is None else np.asarray(pool_faces)
    units = unit_fields(settings.action_units)
    people_seed, plan_seed, windows_seed = np.random.SeedSequence(settings.seed).spawn(3)
    ict_share = ICT_PEOPLE_SHARE if settings.action_units == "ict" else 0.0
    people = make_people(np.random.default_rng(people_seed), settings.subjects, pool_faces, len(units.codes),
                         ict_share)
    plan_rng = np.random.default_rng(plan_seed)
    windows = plan_windows(plan_rng, settings)
    test = test_people(plan_rng, windows, settings)
    rendered = [
        render_window(np.random.default_rng(seed), window, people[window.person], settings.frames, units,
                      settings.representation)
        for window, seed in zip(
            tqdm(windows, desc="synthetic windows", unit="win", disable=not progress), windows_seed.spawn(len(windows))
        )
    ]
    person = np.array([w.person for w in windows])
    identities = ATTRIBUTION if ict_share == 0.0 else f"{ATTRIBUTION}; {ICT_ATTRIBUTION}"
    meta = {
        "P": settings.frames, "frame_stride": FRAME_STRIDE, "fps": CAMERA_FPS, "normalization": NORMALIZATION,
        "extractor": "synthetic",
        "generator": GENERATOR, "seed": settings.seed, "settings": settings.as_meta(), "identities": identities,
        "frames_total": int(sum(r.camera_frames for r in rendered)),
        "frames_no_face": int(sum(r.lost_frames for r in rendered)),
    }
    if settings.representation != ABSOLUTE:
        meta.update(representation=settings.representation, rest_estimator=RestSettings().as_dict(), lead_in={
            "seconds": list(LEAD_IN_S), "turn_share": TURN_SHARE, "turn_deg": TURN_DEG, "turn_s": TURN_S,
            "rest_set_now": sum(r.rest_how == "set" for r in rendered),
        })
    return LandmarkDataset(
        X=np.stack([r.X for r in rendered]), y=np.array([w.emotion for w in windows]),
        subject=np.array([f"syn{p:03d}" for p in person]), source=np.full(len(windows), GENERATOR),
        segment=np.array([w.segment for w in windows]), split=np.where(test[person], "test", "train"), meta=meta,
    )
