"""Named landmark groups of MediaPipe's 468-point face mesh, and distances measured along its surface.

The groups are MediaPipe's ``face_mesh_connections`` sets (FACEMESH_LIPS, _EYE, _EYEBROW, _FACE_OVAL),
walked into ordered contours once and written out here, because importing ``mediapipe`` loads TensorFlow
(+5 s). Each open contour runs from the subject's right to the subject's left ("right" is the subject's right,
which the camera sees on the image's left, as MediaPipe names it); the closed face oval starts at the top.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from edgeemo.errors import EdgeemoError
from edgeemo.face import face_template

LIP_CORNERS = (61, 291)  # outer mouth corners: right, left
LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)  # outer corner 33 to inner corner 133
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)  # inner corner 362 to outer corner 263
LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
RIGHT_EYEBROW_UPPER = (70, 63, 105, 66, 107)  # outer end to inner end
RIGHT_EYEBROW_LOWER = (46, 53, 52, 65, 55)
LEFT_EYEBROW_UPPER = (336, 296, 334, 293, 300)  # inner end to outer end
LEFT_EYEBROW_LOWER = (285, 295, 282, 283, 276)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
    149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
EYEBROWS = tuple(sorted(set(RIGHT_EYEBROW_UPPER + RIGHT_EYEBROW_LOWER + LEFT_EYEBROW_UPPER + LEFT_EYEBROW_LOWER)))


def _face_mesh_connections_path() -> Path:
    # find_spec on the top-level package locates it without running its __init__ (which loads TensorFlow).
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise EdgeemoError("mediapipe is not installed: the face mesh's triangles come from it")
    return Path(list(spec.submodule_search_locations)[0]) / "python" / "solutions" / "face_mesh_connections.py"


@lru_cache(maxsize=1)
def face_mesh_connections():
    """MediaPipe's ``face_mesh_connections`` module, loaded from its file alone (plain frozensets)."""
    path = _face_mesh_connections_path()
    spec = importlib.util.spec_from_file_location("edgeemo_face_mesh_connections", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mesh_edges() -> np.ndarray:
    """int [E, 2]: the edges of the face mesh's triangles. The mouth and the eyes are holes in it."""
    return np.array(sorted(face_mesh_connections().FACEMESH_TESSELATION), dtype=np.int64)


def geodesic_distances(face3d: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """float [len(sources), 468]: shortest distance along the mesh's edges from each source landmark.

    Along the surface the upper lip is far from the lower lip (the path goes round a mouth corner), and an
    upper eyelid far from the lower one, so a movement placed on one does not leak onto the other.
    """
    # MediaPipe's triangles are mirror-symmetric but for 6 of 1322 edges: add their mirror images, so that
    # distances (and the fields built on them) on a symmetric face are exactly symmetric too.
    edges = mesh_edges()
    edges = np.concatenate([edges, face_template().mirror[edges]])
    length = np.linalg.norm(face3d[edges[:, 0]] - face3d[edges[:, 1]], axis=1)
    n = len(face3d)
    graph = coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    return dijkstra(graph, directed=False, indices=np.asarray(sources))
