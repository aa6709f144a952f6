"""Synthetic people: face shapes made from real London dev faces.

Each identity blends 2 or 3 real neutral faces (or their mirror images) with random weights, then adds a
little shape noise along the real faces' principal components. Blending shrinks a shape's spread towards
the mean; the noise gives back the spread the blend lost (1 - sum of squared weights of it), so the
synthetic people vary about as much as the real ones, yet none is a copy of one.
"""

from __future__ import annotations

import numpy as np

from edgeemo.face import face_template
from offline.synth.faces import face_to_image, real_faces, to_face_frame
from offline.synth.fields import MIRROR_X

SHAPE_COMPONENTS = 10  # principal components of the real faces that the noise follows


def identity_pool(faces: np.ndarray) -> np.ndarray:
    """float [2n, 468, 3]: London dev neutral faces at ``faces`` in the face frame, and their mirror images."""
    neutral = real_faces().neutral[faces]
    shapes = to_face_frame(neutral, face_to_image(neutral))
    return np.concatenate([shapes, shapes[:, face_template().mirror] * MIRROR_X])


def make_identities(rng: np.random.Generator, count: int, pool: np.ndarray) -> np.ndarray:
    """float [count, 468, 3]: face-frame neutral shapes of ``count`` new people drawn from ``pool``."""
    flat = pool.reshape(len(pool), -1)
    mean = flat.mean(axis=0)
    _, spread, components = np.linalg.svd(flat - mean, full_matrices=False)
    k = min(SHAPE_COMPONENTS, len(components))
    std = spread[:k] / np.sqrt(max(len(pool) - 1, 1))
    sizes = rng.integers(2, 4, size=count)
    shapes = np.empty((count, flat.shape[1]))
    for i, size in enumerate(sizes):  # once per person: a handful of faces each
        members = rng.choice(len(pool), size=size, replace=False)
        weights = rng.dirichlet(np.ones(size))
        lost_spread = np.sqrt(max(1.0 - (weights**2).sum(), 0.0))
        noise = (rng.standard_normal(k) * std * lost_spread) @ components[:k]
        shapes[i] = weights @ flat[members] + noise
    return shapes.reshape(count, *pool.shape[1:])
