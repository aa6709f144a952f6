"""Derive the canonical face that edgeemo normalises to, and the mesh's left/right symmetry.

Run ``python -m offline.data.face_template`` to rewrite ``edgeemo/resources/face_template.npz``; a test
re-derives it and checks the shipped file. Source: the 50 neutral faces of London dev (CC BY 4.0).

Symmetry: the mean neutral face (3-D) is reflected through the plane fitted to midline landmarks, and
each landmark is matched to its nearest reflected landmark by an optimal one-to-one assignment. The
result is an involution that maps MediaPipe's FACEMESH_LEFT_* sets onto the FACEMESH_RIGHT_* sets.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from edgeemo.face import STABLE_POINTS, TEMPLATE_PATH
from edgeemo.io import atomic_save_npz

N_LANDMARKS = 468
# Landmarks on the face's vertical midline (nose ridge, forehead, lips, chin): they fit the symmetry plane.
MIDLINE_POINTS = (0, 1, 2, 4, 5, 6, 8, 9, 10, 13, 14, 17, 18, 151, 152, 164, 168, 175, 195, 197, 199, 200)


def london_dev_landmarks() -> np.lib.npyio.NpzFile:
    return np.load(resources.files("offline") / "resources" / "london-dev" / "landmarks.npz")


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Source points moved by the rotation, scale and translation that best fit target (no reflection)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.ones(a.shape[1])
    d[-1] = np.sign(np.linalg.det(u @ vt))
    rotation = (u * d) @ vt
    scale = (s * d).sum() / (a**2).sum()
    return scale * a @ rotation + mu_t


def mean_face(faces: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes mean of [n, 468, dims] faces."""
    reference = faces[0]
    for _ in range(iterations):
        reference = np.mean([similarity_fit(f, reference) for f in faces], axis=0)
    return reference


def symmetry_permutation(face3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(perm, normal): perm[i] is the landmark mirroring landmark i; normal is the symmetry plane's normal."""
    mid = face3d[list(MIDLINE_POINTS)]
    centre = mid.mean(0)
    normal = np.linalg.svd(mid - centre)[2][-1]
    reflected = face3d - 2.0 * ((face3d - centre) @ normal)[:, None] * normal[None, :]
    cost = np.linalg.norm(face3d[:, None, :] - reflected[None, :, :], axis=-1)
    _, perm = linear_sum_assignment(cost)
    return perm.astype(np.int16), normal


def derive_face_template() -> dict[str, np.ndarray]:
    data = london_dev_landmarks()
    neutral = data["landmarks"][data["expression"] == "neutral"].astype(np.float64)
    face3d = mean_face(neutral)
    face3d -= face3d.mean(0)
    perm, normal = symmetry_permutation(face3d)
    # Turn the face so that its symmetry plane is x = 0, then look at it from the front (drop z).
    x_axis = normal if normal[0] > 0 else -normal
    y_axis = np.array([0.0, 1.0, 0.0]) - x_axis[1] * x_axis
    y_axis /= np.linalg.norm(y_axis)
    front = np.stack([face3d @ x_axis, face3d @ y_axis], axis=1)
    # Make it exactly symmetric: average the face with its own mirror image.
    mirrored = front[perm] * np.array([-1.0, 1.0])
    front = 0.5 * (front + mirrored)
    # Like the paper's 300x300 face crop divided by 300: the face's height spans [0, 1], centred at 0.5.
    lo, hi = front.min(0), front.max(0)
    scale = 1.0 / (hi[1] - lo[1])
    template = (front - (lo + hi) / 2) * scale + 0.5
    return {
        "template": template.astype(np.float32),
        "mirror": perm,
        "stable_points": np.asarray(STABLE_POINTS, dtype=np.int16),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TEMPLATE_PATH)
    args = parser.parse_args(argv)
    atomic_save_npz(args.out, **derive_face_template())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
