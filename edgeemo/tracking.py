"""Which face is which from frame to frame: a stable id for each face of one stream while it stays in view.

Each track predicts where its face is now from its motion so far (constant velocity, carried on through
frames in which the face was not found), and each pair of a track and a face found costs

    centre distance / face width  +  landmark-shape distance / SHAPE_UNIT

where the shape distance is the mean distance between the face's normalised landmarks
(``edgeemo.normalize``, the frame the models read) and the track's running shape. From one frame to the
next a face's normalised shape moves by about 0.002 face heights (tracker jitter, a slow expression), while
two London dev people's neutral faces differ by 0.02 (median; 0.012 at the 10th percentile): position
tells faces apart while they are apart, shape when they cross. Pairs beyond the gates (MAX_MOVE, and
MAX_SHAPE_STEP from both the face's last frame and its running shape) are never matched; the assignment
with the lowest total cost, most faces matched first, is found exactly (the Hungarian method). A face
matched to no track starts a new one with the next id, unless it is a bent mesh (see MAX_SHAPE_STEP). Ids
count from 0 per stream and are never reused.

Ending a track (a face gone longer than the face gap) is the caller's decision: ``drop(id)``.
Why not a tracking library: docs/multi-face.md (norfair, supervision's ByteTrack, roboflow's trackers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import float32, float64, njit, void
from numba.types import UniTuple

# A mesh further than this from both the face's last frame and its running shape is bent (MediaPipe following
# a face half hidden by another, or stuck where it lost one): it is neither that face nor a new one, and is
# skipped. One face's clean meshes stay within 0.01 of each other, bent ones are 0.03 to 0.09 off.
MAX_SHAPE_STEP = 0.02
SHAPE_UNIT = 0.01  # face heights of normalised landmark distance that cost as much as a face width's move
MAX_MOVE = 1.0  # face widths from the predicted centre, plus MAX_MOVE_PER_MISS per frame the face was missed
MAX_MOVE_PER_MISS = 0.1
BENT_MOVE = 0.5  # face widths: a bent mesh this close to where a face should be is taken for that face's
# Every 4th landmark: their mean distance is the whole mesh's to within a few per cent, at a quarter of the cost.
SHAPE_POINTS = slice(0, None, 4)
VELOCITY_SMOOTHING = 0.5  # weight of the newest frame's motion in the velocity
SHAPE_SMOOTHING = 0.1  # weight of the newest frame's landmarks in the track's shape (a slow expression follows)


@njit([UniTuple(float64, 4)(t[:, :]) for t in (float32, float64)], cache=True)
def face_box(points):
    """(x0, y0, x1, y1): the extent of a face's landmarks [468, 2] in pixels, to the pixel (floats, as
    cv2.boundingRect's x, y, x + w, y + h). Compiled: in serve right after the face mesh, boundingRect and
    numpy's min and max run from cold caches (16 us a frame for boundingRect's call, 4 compiled)."""
    x0 = x1 = points[0, 0]
    y0 = y1 = points[0, 1]
    for n in range(1, points.shape[0]):
        x0, x1 = min(x0, points[n, 0]), max(x1, points[n, 0])
        y0, y1 = min(y0, points[n, 1]), max(y1, points[n, 1])
    return (float(math.floor(x0)), float(math.floor(y0)), float(math.floor(x1)) + 1.0,
            float(math.floor(y1)) + 1.0)


@dataclass
class _Track:
    id: int
    centre: tuple[float, float]  # pixels, where the face was last found
    velocity: tuple[float, float]  # pixels per frame
    width: float  # pixels
    shape: np.ndarray  # normalised landmarks [SHAPE_POINTS], a running mean over the frames found
    last_shape: np.ndarray  # normalised landmarks [SHAPE_POINTS] of the frame last found
    missed: int = 0  # frames since it was last found

    def predicted(self) -> tuple[float, float]:
        frames = self.missed + 1
        return self.centre[0] + self.velocity[0] * frames, self.centre[1] + self.velocity[1] * frames


class FaceTracker:
    """Stable ids for the faces of one stream. Not thread-safe: one per stream."""

    def __init__(self) -> None:
        self._tracks: dict[int, _Track] = {}
        self._next_id = 0

    def update(self, boxes: list[tuple[float, float, float, float]], shapes: list[np.ndarray]) -> list[int]:
        """The track id of each face found in this frame (its ``face_box`` in pixels and its normalised
        landmarks [468, 2]), in their order; faces matched to no track get new ids, except bent meshes: -1.
        Tracks not matched count the frame as missed."""
        # Positions and costs are Python scalars, and one compiled distance per pair: a few faces, right after
        # the face mesh, where numpy's per-call overhead on tiny arrays (run from cold caches), not the
        # arithmetic, is what costs (one face in serve's pipeline: 76 us a frame, 88 with numpy positions).
        tracks = list(self._tracks.values())
        shapes = [shape[SHAPE_POINTS] for shape in shapes]
        centres, widths = [], []
        for x0, y0, x1, y1 in boxes:
            centres.append((0.5 * (x0 + x1), 0.5 * (y0 + y1)))
            widths.append(max(x1 - x0, 1.0))
        cost = [[math.inf] * len(boxes) for _ in tracks]
        bent = [False] * len(boxes)  # where a known face is, but not shaped like it
        for i, track in enumerate(tracks):
            predicted_x, predicted_y = track.predicted()
            reach = MAX_MOVE + MAX_MOVE_PER_MISS * track.missed
            for j, (centre, shape) in enumerate(zip(centres, shapes)):
                move = math.hypot(centre[0] - predicted_x, centre[1] - predicted_y) / track.width
                running = _mean_distance(shape, track.shape)
                # Like its last frame (a head turning), or like its running shape (after a few bent frames).
                alike = min(running, _mean_distance(shape, track.last_shape)) <= MAX_SHAPE_STEP
                if alike and move <= reach:
                    cost[i][j] = move + running / SHAPE_UNIT
                bent[j] |= not alike and move <= BENT_MOVE
        matches = assign(cost)
        ids = [-1] * len(boxes)
        for i, j in matches:
            track = tracks[i]
            frames = track.missed + 1
            track.velocity = tuple(VELOCITY_SMOOTHING * (new - old) / frames + (1 - VELOCITY_SMOOTHING) * v
                                   for new, old, v in zip(centres[j], track.centre, track.velocity))
            # The shape follows slowly: a few frames of a mesh bent by an occluding face do not become the track's.
            _follow(track.shape, shapes[j], SHAPE_SMOOTHING)
            track.centre, track.width, track.last_shape, track.missed = centres[j], widths[j], shapes[j], 0
            ids[j] = track.id
        matched = {i for i, _ in matches}
        for i, track in enumerate(tracks):
            if i not in matched:
                track.missed += 1
        for j, face_id in enumerate(ids):
            if face_id < 0 and not bent[j]:
                ids[j] = self._start(centres[j], widths[j], shapes[j])
        return ids

    def drop(self, face_id: int) -> None:
        """Forget a track (its face has been gone too long): a face found there later gets a new id."""
        self._tracks.pop(face_id, None)

    def _start(self, centre: tuple[float, float], width: float, shape: np.ndarray) -> int:
        face_id = self._next_id
        self._next_id += 1
        self._tracks[face_id] = _Track(face_id, centre, (0.0, 0.0), width, shape.astype(np.float64), shape)
        return face_id


@njit([float64(a[:, :], b[:, :]) for a in (float32, float64) for b in (float32, float64)], cache=True)
def _mean_distance(a, b):
    """Mean Euclidean distance between corresponding points of two shapes [K, 2]."""
    total = 0.0
    for k in range(a.shape[0]):
        total += math.sqrt((a[k, 0] - b[k, 0]) ** 2 + (a[k, 1] - b[k, 1]) ** 2)
    return total / a.shape[0]


@njit([void(float64[:, ::1], t[:, :], float64) for t in (float32, float64)], cache=True)
def _follow(running, shape, weight):
    """running += weight * (shape - running), in place (as numpy's three calls, which cost more from cold caches)."""
    for k in range(running.shape[0]):
        for c in range(2):
            running[k, c] += weight * (shape[k, c] - running[k, c])


def assign(cost: np.ndarray | list[list[float]]) -> list[tuple[int, int]]:
    """(row, column) pairs, each row and column at most once, none at infinite cost: the most pairs, and among
    those the lowest total cost (the Hungarian method, O(n^3); scipy's linear_sum_assignment is not in the
    edge install, and n is the few faces of one frame)."""
    rows, cols = len(cost), len(cost[0]) if len(cost) else 0
    if rows == 0 or cols == 0:
        return []
    if rows == cols == 1:  # one face, one track: the common case
        return [(0, 0)] if math.isfinite(cost[0][0]) else []
    cost = np.asarray(cost, dtype=np.float64)
    finite = np.isfinite(cost)
    # An infeasible (or padding) pair costs more than every feasible pair together, so fewer of them wins first.
    big = 1.0 + float(np.abs(cost[finite]).sum()) if finite.any() else 1.0
    n = max(rows, cols)
    square = np.full((n, n), big)
    square[:rows, :cols] = np.where(finite, cost, big)
    pairs = _hungarian(square)
    return [(r, c) for r, c in pairs if r < rows and c < cols and finite[r, c]]


def _hungarian(a: np.ndarray) -> list[tuple[int, int]]:
    """The minimum-cost perfect matching of a square matrix: shortest augmenting paths with potentials."""
    n = len(a)
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    match = np.zeros(n + 1, dtype=int)  # match[column] = row, 1-based; 0 = free
    way = np.zeros(n + 1, dtype=int)
    for row in range(1, n + 1):
        match[0], col = row, 0
        minv = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[col] = True
            r = match[col]
            reduced = a[r - 1] - u[r] - v[1:]
            free = ~used[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = col
            masked = np.where(free, minv[1:], np.inf)
            nxt = int(np.argmin(masked)) + 1
            delta = masked[nxt - 1]
            u[match[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            col = nxt
            if match[col] == 0:
                break
        while col:
            prev = way[col]
            match[col] = match[prev]
            col = prev
    return [(int(match[c]) - 1, c - 1) for c in range(1, n + 1)]
