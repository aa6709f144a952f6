"""Rebuild ``offline/resources/ict/ict_landmarks.npz`` from a checkout of ICT FaceKit (MIT licence).

    git --git-dir=<fetched ICT-FaceKit> archive HEAD FaceXModel LICENSE | tar -x -C /tmp/ict
    python scripts/build_ict_landmarks.py /tmp/ict

What it does (docs/action-units.md says why):
1. reads ICT's neutral mesh, its 53 expression blendshapes and 100 identity shapes (face area only, vertices
   0..9408, quads split into triangles);
2. places the neutral in edgeemo's face frame by a similarity fit of 51 semantic points (ICT's own Multi-PIE
   68 landmark vertices 17..67: brows, nose, eyes, mouth) onto the same points of the mean London dev face;
3. warps it non-rigidly onto the mean face with a smoothed thin-plate spline through all 68 points;
4. attaches each of MediaPipe's 468 landmarks to its closest point of the warped surface (triangle +
   barycentric coordinates); lip and eyelid landmarks may only attach to their own lip or lid, told apart by
   how jawOpen and eyeBlink move ICT's vertices, so the closed mouth's two lips are never confused;
5. writes every blendshape's and identity shape's displacement at those points, turned and scaled into the
   face frame (float32), with the attachment itself.

Not run by the tests (the checkout is not in the repository); tests/test_ict.py checks what it wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeemo.io import atomic_save_npz  # noqa: E402
from offline.synth.faces import canonical_face, fit_similarity  # noqa: E402
from offline.synth.mesh import (  # noqa: E402
    LEFT_EYE_LOWER, LEFT_EYE_UPPER, LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER,
    RIGHT_EYE_LOWER, RIGHT_EYE_UPPER,
)

OUT = ROOT / "offline" / "resources" / "ict" / "ict_landmarks.npz"
FACE_VERTICES = 9409  # ICT's "full face area": vertices 0..9408 (README, Face Model Topology)
# ICT's Multi-PIE 68 landmark vertices (ICT-FaceKit README, "Facial Landmarks").
ICT_68 = (
    1225, 1888, 1052, 367, 1719, 1722, 2199, 1447, 966, 3661, 4390, 3927, 3924, 2608, 3272, 4088, 3443, 268, 493,
    1914, 2044, 1401, 3615, 4240, 4114, 2734, 2509, 978, 4527, 4942, 4857, 1140, 2075, 1147, 4269, 3360, 1507,
    1542, 1537, 1528, 1518, 1511, 3742, 3751, 3756, 3721, 3725, 3732, 5708, 5695, 2081, 0, 4275, 6200, 6213, 6346,
    6461, 5518, 5957, 5841, 5702, 5711, 5533, 6216, 6207, 6470, 5517, 5966,
)
# The same 68 points on MediaPipe's mesh (the widely used dlib-68 -> face-mesh correspondence, checked here by
# the fit's residuals). Point 0 is the subject's right jaw end, 36 the right eye's outer corner.
MEDIAPIPE_68 = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)
RIGID_POINTS = slice(17, 68)  # the jaw line's points depend on the silhouette in Multi-PIE: warp only
WARP_SMOOTHING = 1e-4
CANDIDATE_VERTICES = 24
MOVES = 0.25  # a vertex belongs to the moving lip / lid when it moves at least this share of the largest


def read_obj(path: Path, vertices: int = FACE_VERTICES) -> tuple[np.ndarray, np.ndarray | None]:
    """float [vertices, 3] and, for the neutral, int [T, 3] triangles among them (quads split)."""
    points, faces = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                points.append(line.split()[1:4])
            elif line.startswith("f "):
                faces.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    points = np.array(points[:vertices], dtype=np.float64)
    triangles = []
    for face in faces:
        if max(face) < vertices:
            triangles.extend([face[0], face[k], face[k + 1]] for k in range(1, len(face) - 1))
    return points, np.array(triangles, dtype=np.int64)


def closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates [T, 3] of the point of each triangle (a, b, c: [T, 3]) closest to p (Ericson 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp, cp = p - b, p - c
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denom = va + vb + vc
    with np.errstate(divide="ignore", invalid="ignore"):
        v, w = vb / denom, vc / denom
        bary = np.stack([1 - v - w, v, w], 1)
        cases = [
            ((d1 <= 0) & (d2 <= 0), lambda: np.stack([np.ones_like(d1), 0 * d1, 0 * d1], 1)),
            ((d3 >= 0) & (d4 <= d3), lambda: np.stack([0 * d1, np.ones_like(d1), 0 * d1], 1)),
            ((d6 >= 0) & (d5 <= d6), lambda: np.stack([0 * d1, 0 * d1, np.ones_like(d1)], 1)),
        ]
        t = d1 / (d1 - d3)
        edge_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        s = d2 / (d2 - d6)
        edge_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        u = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        edge_bc = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
        bary = np.where(edge_bc[:, None], np.stack([0 * u, 1 - u, u], 1), bary)
        bary = np.where(edge_ac[:, None], np.stack([1 - s, 0 * s, s], 1), bary)
        bary = np.where(edge_ab[:, None], np.stack([1 - t, t, 0 * t], 1), bary)
        for where, value in reversed(cases):
            bary = np.where(where[:, None], value(), bary)
    return np.nan_to_num(bary)


def attach(target: np.ndarray, surface: np.ndarray, triangles: np.ndarray,
           allowed: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each target point: its closest surface triangle (among allowed vertices), barycentrics, distance."""
    tree = cKDTree(surface)
    by_vertex = [[] for _ in range(len(surface))]
    for t, tri in enumerate(triangles):
        for v in tri:
            by_vertex[v].append(t)
    chosen, barys, distances = [], [], []
    for point, ok in zip(target, allowed):
        if ok is None:
            near = tree.query(point, CANDIDATE_VERTICES)[1]
        else:
            candidates = np.flatnonzero(ok)
            near = candidates[np.argsort(np.linalg.norm(surface[candidates] - point, axis=1))[:CANDIDATE_VERTICES]]
        tris = np.unique(np.concatenate([by_vertex[v] for v in near]))
        if ok is not None:
            tris = tris[ok[triangles[tris]].all(axis=1)]
        corners = surface[triangles[tris]]
        bary = closest_on_triangles(point, corners[:, 0], corners[:, 1], corners[:, 2])
        closest = (bary[:, :, None] * corners).sum(1)
        best = int(np.argmin(np.linalg.norm(closest - point, axis=1)))
        chosen.append(tris[best])
        barys.append(bary[best])
        distances.append(float(np.linalg.norm(closest[best] - point)))
    return np.array(chosen), np.array(barys), np.array(distances)


def part_masks(neutral: np.ndarray, shapes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """bool [V] per part: the lower lip (what jawOpen moves) and each upper eyelid (what eyeBlink moves)."""
    def moving(*names):
        size = np.linalg.norm(sum(shapes[n] for n in names) - len(names) * neutral, axis=1)
        return size >= MOVES * size.max()
    return {"lower_lip": moving("jawOpen"), "upper_lids": moving("eyeBlink_L", "eyeBlink_R")}


def allowed_vertices(masks: dict[str, np.ndarray], mouth_region: np.ndarray, eye_region: np.ndarray):
    """Per MediaPipe landmark, the ICT vertices it may attach to (None: any)."""
    lower_lip = set(LIPS_LOWER_INNER[1:-1] + LIPS_LOWER_OUTER[1:-1])
    upper_lip = set(LIPS_UPPER_INNER[1:-1] + LIPS_UPPER_OUTER[1:-1])
    upper_lids = set(RIGHT_EYE_UPPER[1:-1] + LEFT_EYE_UPPER[1:-1])
    lower_lids = set(RIGHT_EYE_LOWER[1:-1] + LEFT_EYE_LOWER[1:-1])
    allowed = []
    for i in range(468):
        if i in lower_lip:
            allowed.append(masks["lower_lip"] & mouth_region)
        elif i in upper_lip:
            allowed.append(~masks["lower_lip"] & mouth_region)
        elif i in upper_lids:
            allowed.append(masks["upper_lids"] & eye_region)
        elif i in lower_lids:
            allowed.append(~masks["upper_lids"] & eye_region)
        else:
            allowed.append(None)
    return allowed


def build(checkout: Path) -> dict:
    model = checkout / "FaceXModel"
    names = json.loads((model / "vertex_indices.json").read_text())["expressions"]
    neutral, triangles = read_obj(model / "generic_neutral_mesh.obj")
    shapes = {n: read_obj(model / f"{n}.obj")[0] for n in names}
    identity_files = sorted(model.glob("identity*.obj"))
    identities = np.stack([read_obj(p)[0] - neutral for p in identity_files])
    face = canonical_face()
    ict68, mp68 = np.array(ICT_68), np.array(MEDIAPIPE_68)
    pose = fit_similarity(neutral[ict68[RIGID_POINTS]], face[mp68[RIGID_POINTS]])
    placed = pose.scale * neutral @ pose.rotation + pose.offset
    rigid_residual = np.linalg.norm(placed[ict68[RIGID_POINTS]] - face[mp68[RIGID_POINTS]], axis=1)
    warp = RBFInterpolator(placed[ict68], face[mp68] - placed[ict68], kernel="thin_plate_spline",
                           smoothing=WARP_SMOOTHING)
    warped = placed + warp(placed)
    masks = part_masks(neutral, shapes)
    # Lips and lids attach within reach of their own contour only (about a mouth's / an eye's width).
    mouth_region = np.linalg.norm(warped - face[[13, 14]].mean(0), axis=1) < 0.25
    eye_region = np.minimum(np.linalg.norm(warped - face[[159, 145]].mean(0), axis=1),
                            np.linalg.norm(warped - face[[386, 374]].mean(0), axis=1)) < 0.12
    chosen, bary, distance = attach(face, warped, triangles, allowed_vertices(masks, mouth_region, eye_region))
    corners = triangles[chosen]  # [468, 3]

    def at_landmarks(displacement: np.ndarray) -> np.ndarray:  # ICT displacement [..., V, 3] -> face frame
        local = (bary[:, :, None] * displacement[..., corners, :]).sum(-2)
        return (pose.scale * local @ pose.rotation).astype(np.float32)

    expressions = at_landmarks(np.stack([shapes[n] - neutral for n in names]))
    return {
        "expression_names": np.array(names), "expressions": expressions,
        "identities": at_landmarks(identities),
        "identity_names": np.array([p.stem for p in identity_files]),
        "neutral": (pose.scale * (bary[:, :, None] * neutral[corners]).sum(1) @ pose.rotation + pose.offset)
        .astype(np.float32),
        "vertices": corners.astype(np.int32), "barycentric": bary.astype(np.float32),
        "attach_distance": distance.astype(np.float32), "scale": np.float64(pose.scale),
        "rigid_residual_median": np.float64(np.median(rigid_residual)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout (or archive) of ICT-FaceKit")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = build(args.checkout)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_npz(args.out, **data)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB): rigid residual median "
          f"{data['rigid_residual_median']:.4f}, attach distance median {np.median(data['attach_distance']):.4f} "
          f"max {data['attach_distance'].max():.4f} (face heights)")


if __name__ == "__main__":
    main()
