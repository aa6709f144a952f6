"""Face regions for explanations: every one of MediaPipe's 468 mesh landmarks belongs to exactly one region.

Defined once, from the mesh: the eyes, brows, lips and nose are MediaPipe's own landmark sets (the FACEMESH_*
connection sets of mediapipe.python.solutions.face_mesh_connections, copied here so the runtime needs no
MediaPipe import to name a region; tests/test_attribution.py checks the copy). The lips are split on the
canonical face (edgeemo/resources/face_template.npz) into the mouth corners (within a quarter of the mouth's
half-width of either corner) and the upper and lower lip (above or below the line through the corners). The
cheeks, forehead and jaw are seeded by a few well-known mesh points (the face oval above the brows; the oval
below the mouth and the chin; the cheekbones). Every other landmark joins the region of its nearest seed on
the canonical face. The forehead is then split where FACS splits the frontalis: its inner part, between the
middles of the two brows, is what AU1 (inner brow raiser: sadness, fear, surprise) moves; its outer parts are
what AU2 (outer brow raiser) moves. The cheeks are split the same way at the pupils' line: their inner part,
between the nose and the line below each eye's centre, is FACS's infraorbital triangle, which AU9 (nose
wrinkler: disgust) and AU10 (upper lip raiser) push up (AU9 moves 10 of its 18 landmarks, and 4 of the outer
part's 52); the smile's AU6 and AU12 lift both parts. Left and right are merged: an expression's action units
move both sides together (the synthetic truth and FACS both name them once), and fewer regions keep exact
Shapley values cheap (2^R coalitions); see docs/explanations.md.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edgeemo.face import N_LANDMARKS, face_template

# MediaPipe FACEMESH_* landmark sets (left and right merged).
MP_LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
           270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
MP_EYES = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
           7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
MP_BROWS = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336, 46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
MP_NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440)
MOUTH_CORNERS = (61, 291)  # the outer lip corners: the mouth's ends on the canonical face
# Seeds of the regions MediaPipe has no set for (face oval points split by height, chin, cheekbones).
FOREHEAD_SEEDS = (10, 338, 297, 332, 284, 251, 109, 67, 103, 54, 21, 151, 9, 108, 337, 69, 299)
JAW_SEEDS = (152, 148, 176, 149, 150, 136, 172, 58, 377, 400, 378, 379, 365, 397, 288, 199, 175, 200, 18, 32, 262)
CHEEK_SEEDS = (50, 101, 36, 205, 187, 123, 116, 117, 118, 119, 100, 280, 330, 266, 425, 411, 352, 345, 346, 347,
               348, 329)
CORNER_SHARE = 0.25  # a lip landmark this share of the mouth's half-width from a corner is a mouth-corner one

REGIONS = ("brows", "eyes", "inner_forehead", "outer_forehead", "nose", "inner_cheeks", "outer_cheeks", "upper_lip",
           "mouth_corners", "lower_lip", "jaw")


@lru_cache(maxsize=1)
def region_of_landmark() -> np.ndarray:
    """int8 [468]: the index into REGIONS of each mesh landmark."""
    face = face_template().template.astype(np.float64)
    seeds: dict[str, set[int]] = {"brows": set(MP_BROWS), "eyes": set(MP_EYES), "inner_forehead": set(FOREHEAD_SEEDS),
                                  "outer_forehead": set(), "nose": set(MP_NOSE), "inner_cheeks": set(CHEEK_SEEDS),
                                  "outer_cheeks": set(), "jaw": set(JAW_SEEDS)}
    left, right = face[MOUTH_CORNERS[0]], face[MOUTH_CORNERS[1]]
    half_width = abs(right[0] - left[0]) / 2
    corner_y = (left[1] + right[1]) / 2
    for lip in MP_LIPS:
        x, y = face[lip]
        if min(abs(x - left[0]), abs(x - right[0])) <= CORNER_SHARE * half_width:
            name = "mouth_corners"
        else:
            name = "upper_lip" if y < corner_y else "lower_lip"  # y grows downwards
        seeds.setdefault(name, set()).add(lip)
    seed_ids = np.array([i for name in REGIONS for i in sorted(seeds[name])])
    seed_region = np.array([REGIONS.index(name) for name in REGIONS for _ in seeds[name]])
    distance = np.linalg.norm(face[:, None, :] - face[seed_ids][None], axis=2)  # [468, seeds]
    owner = seed_region[distance.argmin(axis=1)]
    # Every forehead and cheek seed started in the inner part; what lies beyond either brow's middle, or either
    # eye's centre, is the outer part.
    centre = face[list(MP_BROWS), 0].mean()  # the face's midline: the brows are mirror images
    from_midline = np.abs(face[:, 0] - centre)
    for inner, outer, line in (("inner_forehead", "outer_forehead", np.abs(face[list(MP_BROWS), 0] - centre).mean()),
                               ("inner_cheeks", "outer_cheeks", np.abs(face[list(MP_EYES), 0] - centre).mean())):
        owner[(owner == REGIONS.index(inner)) & (from_midline > line)] = REGIONS.index(outer)
    return owner.astype(np.int8)


def region_landmarks() -> dict[str, list[int]]:
    """Each region's mesh landmarks, in REGIONS order."""
    owner = region_of_landmark()
    return {name: np.flatnonzero(owner == r).tolist() for r, name in enumerate(REGIONS)}


def union_regions(union: np.ndarray) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """The regions a bundle's union of landmarks [U] reaches (others have nothing to attribute), and for each
    the positions in the union of its landmarks."""
    owner = region_of_landmark()[np.asarray(union)]
    names, members = [], []
    for r, name in enumerate(REGIONS):
        where = np.flatnonzero(owner == r)
        if len(where):
            names.append(name)
            members.append(where)
    return tuple(names), members
