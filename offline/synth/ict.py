"""Action units and people from ICT FaceKit's real 3-D face captures, at MediaPipe's 468 landmarks.

ICT FaceKit (USC Institute for Creative Technologies, MIT licence: offline/resources/ict/LICENSE.md) is a
morphable face model built from light-stage scans: a neutral mesh, 100 identity shapes and 53 FACS-based
expression blendshapes. ``scripts/build_ict_landmarks.py`` attached each MediaPipe landmark to ICT's surface
and wrote every shape's displacement there, in the face frame (``offline/resources/ict/ict_landmarks.npz``);
docs/action-units.md gives the method and its checks.

Each action unit is one ICT blendshape pair (``AU_BLENDSHAPES``), its ``_R`` shape the subject's right half
and ``_L`` the left; a midline shape (jawOpen) is split half and half. ICT's blendshapes at weight 1 are
full, posed expressions; GAIN scales them all by one number, the one that makes ICT's smile (AU6 + AU12 at
intensity 1) as large as the mean real London dev smile of the calibration half, which is what intensity 1
means for the fitted smile too. The other units thus keep ICT's sizes relative to its smile.

The smile itself (AU6, AU12) stays the fitted one (``offline.synth.smile_fit``): against the held-out real
London smiles it is closer to real than ICT's (``offline.synth.calibration.ict_smile_report``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np

from edgeemo.face import STABLE_POINTS
from offline.synth.action_units import ACTION_UNITS, ActionUnitFields, action_unit_fields
from offline.synth.faces import canonical_face, fit_similarity, to_face_frame

# FACS action unit -> ICT blendshape (ARKit naming; "_L"/"_R" appended per side, none for a midline shape).
AU_BLENDSHAPES: dict[str, str] = {
    "AU1": "browInnerUp", "AU2": "browOuterUp", "AU4": "browDown", "AU5": "eyeWide", "AU6": "cheekSquint",
    "AU7": "eyeSquint", "AU9": "noseSneer", "AU10": "mouthUpperUp", "AU12": "mouthSmile", "AU15": "mouthFrown",
    "AU16": "mouthLowerDown", "AU20": "mouthStretch", "AU23": "mouthPress", "AU26": "jawOpen",
}
BLINK = "eyeBlink"  # AU45
GAIN = 0.34  # 1 / 2.91: ICT's AU6 + AU12 at weight 1 is 2.91 times the mean real smile (calibration half)
KEPT_FITTED = ("AU6", "AU12")  # the fitted smile is closer to the real ones than ICT's
ATTRIBUTION = "identities and action units from ICT FaceKit (USC Institute for Creative Technologies, MIT licence)"


class IctLandmarks(NamedTuple):
    expression_names: tuple[str, ...]
    expressions: np.ndarray  # float32 [53, 468, 3]: each blendshape's displacement at weight 1, face frame
    identities: np.ndarray  # float32 [100, 468, 3]: each identity shape's displacement at weight 1
    neutral: np.ndarray  # float32 [468, 3]: ICT's generic neutral at the landmarks, face frame

    def expression(self, name: str) -> np.ndarray:
        return self.expressions[self.expression_names.index(name)].astype(np.float64)


@lru_cache(maxsize=1)
def ict_landmarks() -> IctLandmarks:
    with np.load(resources.files("offline") / "resources" / "ict" / "ict_landmarks.npz") as data:
        return IctLandmarks(tuple(str(n) for n in data["expression_names"]), data["expressions"],
                            data["identities"], data["neutral"])


def unit_field(code: str, ict: IctLandmarks | None = None) -> np.ndarray:
    """float [2, 468, 3]: the unit's right- and left-side fields at intensity 1, before GAIN."""
    ict = ict or ict_landmarks()
    shape = AU_BLENDSHAPES[code]
    if shape in ict.expression_names:  # a midline shape: half on each side
        field = ict.expression(shape)
        return np.stack([0.5 * field, 0.5 * field])
    return np.stack([ict.expression(shape + "_R"), ict.expression(shape + "_L")])


@lru_cache(maxsize=1)
def ict_action_unit_fields() -> ActionUnitFields:
    """The units of ``offline.synth.action_units.ACTION_UNITS``: ICT's blendshapes, but the fitted smile."""
    ict, fitted = ict_landmarks(), action_unit_fields()
    fields = np.stack([
        fitted.fields[fitted.index(code)] if code in KEPT_FITTED else GAIN * unit_field(code, ict)
        for code in ACTION_UNITS
    ])
    blink = ict.expression(BLINK + "_R") + ict.expression(BLINK + "_L")  # eyes shut: a closure, not scaled
    return ActionUnitFields(ACTION_UNITS, fields.astype(np.float32), blink.astype(np.float32))


def ict_identities(rng: np.random.Generator, count: int) -> np.ndarray:
    """float [count, 468, 3]: neutral face-frame shapes of new people drawn from ICT's identity model.

    Weights are standard normal, as ICT's own sampler draws them; each shape is put in the face frame by
    the similarity fit of its stable points onto the mean London face's, as real faces are.
    """
    ict = ict_landmarks()
    weights = rng.standard_normal((count, len(ict.identities)))
    shapes = ict.neutral[None].astype(np.float64) + np.einsum("nk,kij->nij", weights, ict.identities)
    stable = list(STABLE_POINTS)
    pose = fit_similarity(np.broadcast_to(canonical_face()[stable], shapes[:, stable].shape), shapes[:, stable])
    return to_face_frame(shapes, pose)


def ict_smile_field() -> np.ndarray:
    """float [468, 3]: ICT's own smile, AU6 + AU12 (cheekSquint + mouthSmile) at intensity 1 on both sides."""
    return GAIN * (unit_field("AU6") + unit_field("AU12")).sum(axis=0)


def ict_smile_parts() -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """((AU6, AU12), AU26): ICT's fields [468, 3] at weight 1, both sides together, for the smile validation."""
    return (unit_field("AU6").sum(axis=0), unit_field("AU12").sum(axis=0)), unit_field("AU26").sum(axis=0)
