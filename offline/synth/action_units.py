"""FACS action units as 3-D displacement fields on the face mesh (face units: the neutral face is 1 tall).

Each unit moves a few control landmarks (given on the subject's right side and the midline, mirrored onto the
left) and the surrounding skin with them (``offline.synth.fields``). AU6 and AU12 are fitted to real smiles
(``offline.synth.smile_fit``); the others are set by hand from the FACS descriptions, with sizes in proportion
to the real smile (whose mouth corners move about 0.05). AU26 turns the jaw about a hinge in front of the ears.
The blink (AU45) closes each upper eyelid onto the lower one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from edgeemo.face import STABLE_POINTS
from offline.synth import smile_fit
from offline.synth.faces import calibration_half, canonical_face
from offline.synth.fields import Control, control_field, hold_still, side_fields, spread_weights
from offline.synth.mesh import (
    LIP_CORNERS, LIPS_LOWER_INNER, LIPS_UPPER_INNER, RIGHT_EYE_LOWER, RIGHT_EYE_UPPER, geodesic_distances,
)

NAMES = {
    "AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer", "AU5": "upper lid raiser",
    "AU6": "cheek raiser", "AU7": "lid tightener", "AU9": "nose wrinkler", "AU10": "upper lip raiser",
    "AU12": "lip corner puller", "AU15": "lip corner depressor", "AU16": "lower lip depressor",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU26": "jaw drop",
}
ACTION_UNITS = tuple(NAMES)  # the order of the field array's first axis

# (radius, controls): displacement (x, y, z) at intensity 1 of landmarks on the right side (x < 0) and midline.
# Moving towards the midline is +x on the right side; up is -y; into the face is +z.
HAND_SET: dict[str, tuple[float, tuple[Control, ...]]] = {
    "AU1": (0.35, (
        Control(107, (0.0, -0.035, 0.0)), Control(55, (0.0, -0.03, 0.0)), Control(66, (0.0, -0.028, 0.0)),
        Control(65, (0.0, -0.022, 0.0)), Control(105, (0.0, -0.012, 0.0)), Control(108, (0.0, -0.022, 0.0)),
        Control(69, (0.0, -0.014, 0.0)), Control(9, (0.0, -0.014, 0.0)), Control(221, (0.0, -0.012, 0.0)),
        Control(222, (0.0, -0.01, 0.0)),
    )),
    "AU2": (0.35, (
        Control(70, (0.0, -0.03, 0.0)), Control(63, (0.0, -0.035, 0.0)), Control(105, (0.0, -0.025, 0.0)),
        Control(46, (0.0, -0.028, 0.0)), Control(53, (0.0, -0.025, 0.0)), Control(104, (0.0, -0.018, 0.0)),
        Control(68, (0.0, -0.02, 0.0)), Control(71, (0.0, -0.02, 0.0)), Control(103, (0.0, -0.01, 0.0)),
        Control(224, (0.0, -0.012, 0.0)), Control(225, (0.0, -0.012, 0.0)),
    )),
    "AU4": (0.35, (
        Control(107, (0.012, 0.025, 0.0)), Control(55, (0.012, 0.028, 0.0)), Control(66, (0.008, 0.02, 0.0)),
        Control(65, (0.008, 0.022, 0.0)), Control(105, (0.004, 0.012, 0.0)), Control(52, (0.004, 0.014, 0.0)),
        Control(108, (0.006, 0.012, 0.0)), Control(9, (0.0, 0.012, -0.004)), Control(8, (0.0, 0.006, 0.0)),
        Control(221, (0.006, 0.01, 0.0)), Control(222, (0.004, 0.01, 0.0)), Control(193, (0.004, 0.006, 0.0)),
        Control(159, (0.0, 0.004, 0.0)),
    )),
    "AU5": (0.12, (
        Control(160, (0.0, -0.011, -0.002)), Control(159, (0.0, -0.013, -0.002)), Control(158, (0.0, -0.012, -0.002)),
        Control(161, (0.0, -0.008, 0.0)), Control(157, (0.0, -0.008, 0.0)), Control(27, (0.0, -0.006, 0.0)),
        Control(28, (0.0, -0.005, 0.0)), Control(29, (0.0, -0.005, 0.0)),
    )),
    "AU7": (0.12, (
        Control(145, (0.0, -0.013, 0.0)), Control(144, (0.0, -0.01, 0.0)), Control(153, (0.0, -0.01, 0.0)),
        Control(163, (0.0, -0.006, 0.0)), Control(154, (0.0, -0.006, 0.0)), Control(23, (0.0, -0.009, 0.0)),
        Control(24, (0.0, -0.008, 0.0)), Control(22, (0.0, -0.007, 0.0)), Control(159, (0.0, 0.005, 0.0)),
    )),
    "AU9": (0.25, (
        Control(48, (0.002, -0.018, 0.0)), Control(64, (0.0, -0.018, 0.0)), Control(98, (0.0, -0.015, 0.0)),
        Control(209, (0.0, -0.015, 0.0)), Control(126, (0.0, -0.014, 0.0)), Control(142, (0.0, -0.012, 0.0)),
        Control(217, (0.003, -0.01, 0.0)), Control(114, (0.003, -0.008, 0.0)), Control(55, (0.006, 0.012, 0.0)),
        Control(107, (0.006, 0.01, 0.0)), Control(0, (0.0, -0.008, 0.0)), Control(37, (0.0, -0.009, 0.0)),
        Control(205, (0.0, -0.008, 0.0)), Control(50, (0.0, -0.006, 0.0)),
    )),
    "AU10": (0.22, (
        Control(0, (0.0, -0.02, -0.004)), Control(37, (0.0, -0.022, -0.004)), Control(39, (0.0, -0.02, -0.003)),
        Control(40, (0.0, -0.014, 0.0)), Control(13, (0.0, -0.016, 0.0)), Control(82, (0.0, -0.017, 0.0)),
        Control(81, (0.0, -0.015, 0.0)), Control(80, (0.0, -0.01, 0.0)), Control(206, (0.0, -0.01, 0.0)),
        Control(92, (0.0, -0.012, 0.0)), Control(164, (0.0, -0.008, 0.0)),
    )),
    "AU15": (0.25, (
        Control(61, (-0.005, 0.03, 0.0)), Control(146, (0.0, 0.025, 0.0)), Control(91, (0.0, 0.015, 0.0)),
        Control(185, (0.0, 0.02, 0.0)), Control(40, (0.0, 0.01, 0.0)), Control(57, (-0.0025, 0.025, 0.0)),
        Control(43, (0.0, 0.0225, 0.0)), Control(106, (0.0, 0.015, 0.0)), Control(202, (0.0, 0.0175, 0.0)),
        Control(204, (0.0, 0.0125, 0.0)),
    )),
    "AU16": (0.2, (
        Control(17, (0.0, 0.018, -0.004)), Control(84, (0.0, 0.018, -0.003)), Control(181, (0.0, 0.016, 0.0)),
        Control(91, (0.0, 0.01, 0.0)), Control(14, (0.0, 0.016, 0.0)), Control(87, (0.0, 0.016, 0.0)),
        Control(178, (0.0, 0.013, 0.0)), Control(18, (0.0, 0.012, 0.0)), Control(83, (0.0, 0.012, 0.0)),
        Control(182, (0.0, 0.008, 0.0)),
    )),
    "AU20": (0.28, (
        Control(61, (-0.026, 0.006, 0.004)), Control(57, (-0.02, 0.006, 0.0)), Control(146, (-0.018, 0.004, 0.0)),
        Control(185, (-0.018, 0.002, 0.0)), Control(91, (-0.01, 0.002, 0.0)), Control(40, (-0.01, 0.0, 0.0)),
        Control(186, (-0.014, 0.004, 0.0)), Control(212, (-0.01, 0.004, 0.0)), Control(43, (-0.012, 0.006, 0.0)),
        Control(0, (0.0, 0.003, 0.0)), Control(17, (0.0, -0.003, 0.0)), Control(13, (0.0, 0.002, 0.0)),
        Control(14, (0.0, -0.002, 0.0)),
    )),
    "AU23": (0.2, (
        Control(61, (0.012, 0.0, -0.004)), Control(0, (0.0, 0.012, -0.004)), Control(37, (0.0, 0.012, -0.003)),
        Control(40, (0.005, 0.009, 0.0)), Control(17, (0.0, -0.014, -0.004)), Control(84, (0.0, -0.013, -0.003)),
        Control(91, (0.005, -0.008, 0.0)), Control(13, (0.0, 0.002, 0.0)), Control(14, (0.0, -0.002, 0.0)),
        Control(18, (0.0, -0.008, 0.0)), Control(200, (0.0, -0.006, 0.0)),
    )),
}
# AU26: the jaw turns about a left-right axis in front of the ears (below the temple landmark 234, at its
# depth) while the condyle slides forward, so the chin drops and only slightly recedes.
JAW_ANGLE = 0.16  # radians at intensity 1
JAW_HINGE = (234, 0.05)  # landmark level, and how far below it (face units)
JAW_SLIDE = (0.0, 0.05, -0.35)  # per radian
JAW_SPLIT = 0.04  # how sharply (face units along the mesh) the lower face's share drops around the mouth
STILL_RADIUS = 0.06  # around a stable point, hand-set movements fade out over this distance
BLINK_RADIUS = 0.06
BLINK_CLOSURE = 0.95  # an upper eyelid travels this share of the way onto the lower one


class ActionUnitFields(NamedTuple):
    codes: tuple[str, ...]
    fields: np.ndarray  # float32 [A, 2, 468, 3]: right- and left-side fields of each unit at intensity 1
    blink: np.ndarray  # float32 [468, 3]: both eyes closed

    def index(self, code: str) -> int:
        return self.codes.index(code)


def still(face3d: np.ndarray) -> np.ndarray:
    """float [468]: how much of a hand-set movement a landmark takes; 0 at edgeemo's stable points.

    The normalisation assumes expressions leave those points alone; the hand-set units keep to it. (The
    fitted smile does not need to: it moves them as little or as much as real smiles do.)
    """
    return hold_still(face3d, np.array(STABLE_POINTS), STILL_RADIUS)


def jaw_field(face3d: np.ndarray) -> np.ndarray:
    """float [2, 468, 3]: AU26, half on each side.

    The share of the jaw's motion a landmark takes is 1 below the lips and 0 above them (nearer, along the
    surface, to the lower lip than to the upper one), and fades out from the mouth corners' level up to the
    hinge's, so that the temples and the sides of the face (stable points among them) stay put.
    """
    to_upper = geodesic_distances(face3d, np.array(LIPS_UPPER_INNER)).min(axis=0)
    to_lower = geodesic_distances(face3d, np.array(LIPS_LOWER_INNER)).min(axis=0)
    landmark, below = JAW_HINGE
    hinge = np.array([0.0, face3d[landmark, 1] + below, face3d[landmark, 2]])
    height = np.clip((face3d[:, 1] - hinge[1]) / (face3d[LIP_CORNERS[0], 1] - hinge[1]), 0.0, 1.0)
    share = height / (1.0 + np.exp(-(to_upper - to_lower) / JAW_SPLIT))
    arm = face3d - hinge
    turn = np.stack([np.zeros(len(face3d)), -arm[:, 2], arm[:, 1]], axis=1)  # x-axis cross arm
    field = JAW_ANGLE * share[:, None] * (turn + np.array(JAW_SLIDE))
    return np.stack([0.5 * field, 0.5 * field])


def blink_field(face3d: np.ndarray) -> np.ndarray:
    """float [468, 3]: each upper-lid landmark moves onto its lower-lid partner (the contours pair up in order).

    The eye corners begin both contours, so they get no displacement; they are stable points and stay put.
    """
    upper, lower = np.array(RIGHT_EYE_UPPER), np.array(RIGHT_EYE_LOWER)
    weights = spread_weights(face3d, upper, BLINK_RADIUS)  # the left eye gets the mirror image
    field = side_fields(weights, BLINK_CLOSURE * (face3d[lower] - face3d[upper])).sum(axis=0)
    return field * still(face3d)[:, None]


@lru_cache(maxsize=1)
def action_unit_fields() -> ActionUnitFields:
    face = canonical_face()
    smile = smile_fit.fit_smile(tuple(calibration_half()))
    fields = []
    for code in ACTION_UNITS:
        if code == "AU26":
            fields.append(jaw_field(face))
        elif code in smile:
            landmarks, radius = smile_fit.CONTROLS[code]
            fields.append(side_fields(spread_weights(face, np.array(landmarks), radius), smile[code]))
        else:
            radius, controls = HAND_SET[code]
            fields.append(control_field(face, controls, radius) * still(face)[:, None])
    return ActionUnitFields(ACTION_UNITS, np.stack(fields).astype(np.float32), blink_field(face).astype(np.float32))
