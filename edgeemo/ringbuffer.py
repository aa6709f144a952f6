"""The last frames of selected landmarks for one stream, in a ring buffer compiled with numba.

Frames go in as float32 [L, 2] (x, y of the L landmarks the model bundle reads) and come out as model
windows [frames, 2, L]. The storage is kept in that model layout, so ``append`` transposes one frame
once and ``window`` is a plain row copy, with no allocation in either.

Invariants (``_state`` is int64 [2] = [head, count]; ``capacity`` = ``_data.shape[0]``):

- ``0 <= count <= capacity``; ``0 <= head < max(capacity, 1)``.
- ``head`` is the slot the next append writes; the newest frame is at ``(head - 1) % capacity`` and the
  i-th newest (i = 0 newest) at ``(head - 1 - i) % capacity``, for i < count.
- Slots not among the ``count`` newest hold stale data that no read looks at, so ``clear`` only resets
  ``_state``.
- A window of ``frames`` frames at ``stride`` takes the newest frame and every stride-th one before it;
  it spans ``(frames - 1) * stride + 1`` frames and exists once ``count`` reaches that span.

The kernels are compiled for their exact argument types when this module is imported, and cached on
disk (``cache=True``), so a restart loads them instead of compiling, and the first frame pays nothing.
Shapes are fixed at construction; the kernels repeat only the size checks that keep their writes
inside the arrays, since numba does not check bounds.

Not thread-safe: one buffer per stream, used from one thread.
"""

from __future__ import annotations

import numpy as np
from numba import float32, float64, int64, njit, void

# Frames may arrive as float32 or float64, in any memory layout (a transposed or sliced view).
_FRAME_TYPES = (float32[:, :], float64[:, :])
_DATA = float32[:, :, ::1]
_STATE = int64[::1]


@njit([void(_DATA, _STATE, t) for t in _FRAME_TYPES], cache=True)
def _append(data, state, frame):
    landmarks = data.shape[2]
    if frame.shape[0] != landmarks or frame.shape[1] != 2:
        raise ValueError("RingBuffer.append: frame must be [L, 2] with the buffer's L")
    capacity = data.shape[0]
    if capacity == 0:
        return
    head = state[0]
    for j in range(landmarks):
        data[head, 0, j] = frame[j, 0]
        data[head, 1, j] = frame[j, 1]
    state[0] = head + 1 if head + 1 < capacity else 0
    if state[1] < capacity:
        state[1] += 1


@njit([void(_DATA, _STATE, float32[:, :, :]), void(_DATA, _STATE, float64[:, :, :])], cache=True)
def _extend(data, state, frames):
    for i in range(frames.shape[0]):
        _append(data, state, frames[i])


@njit(void(_DATA, _STATE, int64, float32[:, :, ::1]), cache=True)
def _window(data, state, stride, out):
    frames = out.shape[0]
    if out.shape[1] != 2 or out.shape[2] != data.shape[2]:
        raise ValueError("RingBuffer.window: out must be [frames, 2, L] with the buffer's L")
    if frames < 1 or stride < 1:
        raise ValueError("RingBuffer.window: frames and stride must be at least 1")
    if (frames - 1) * stride + 1 > state[1]:
        raise ValueError("RingBuffer.window: not enough frames yet (check is_full first)")
    capacity = data.shape[0]
    newest = state[0] - 1 + capacity  # + capacity keeps the index non-negative before the modulo
    for k in range(frames):
        src = (newest - (frames - 1 - k) * stride) % capacity
        out[k, :, :] = data[src]


class RingBuffer:
    """The last ``capacity`` frames of float32 [L, 2] landmarks, oldest dropped first (like ``deque(maxlen=...)``).

    ``capacity`` 0 is allowed and keeps nothing, as ``deque(maxlen=0)`` does.
    """

    def __init__(self, capacity: int, landmarks: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 0:
            raise ValueError(f"RingBuffer: capacity must be an integer >= 0, got {capacity!r}")
        if isinstance(landmarks, bool) or not isinstance(landmarks, (int, np.integer)) or landmarks < 1:
            raise ValueError(f"RingBuffer: landmarks must be an integer >= 1, got {landmarks!r}")
        self._data = np.zeros((int(capacity), 2, int(landmarks)), dtype=np.float32)
        self._state = np.zeros(2, dtype=np.int64)

    @classmethod
    def for_window(cls, frames: int, stride: int, landmarks: int) -> RingBuffer:
        """The smallest buffer that holds one window of ``frames`` frames taken every ``stride``-th."""
        return cls(window_span(frames, stride), landmarks)

    @property
    def maxlen(self) -> int:
        return self._data.shape[0]

    @property
    def landmarks(self) -> int:
        return self._data.shape[2]

    def __len__(self) -> int:
        return int(self._state[1])

    def append(self, frame: np.ndarray) -> None:
        """Add one frame, float32 or float64 [L, 2]; the oldest is dropped when full."""
        _append(self._data, self._state, frame)

    def extend(self, frames: np.ndarray) -> None:
        """Append each frame of a float32 or float64 [n, L, 2] array, oldest first."""
        _extend(self._data, self._state, frames)

    def clear(self) -> None:
        """Forget every frame (say, when the face has been gone too long); nothing is freed or zeroed."""
        self._state[:] = 0

    def is_full(self, frames: int, stride: int = 1) -> bool:
        """Whether a window of ``frames`` frames at ``stride`` can be read now."""
        return int(self._state[1]) >= (frames - 1) * stride + 1

    def window(self, stride: int, frames: int, out: np.ndarray) -> np.ndarray:
        """Write the newest frame and the ``frames - 1`` before it, every ``stride``-th, oldest first, into
        ``out`` (float32, C-contiguous, [frames, 2, L]) and return ``out``. Allocates nothing."""
        if out.shape[0] != frames:
            raise ValueError(f"RingBuffer.window: out has {out.shape[0]} frames, asked for {frames}")
        _window(self._data, self._state, stride, out)
        return out

    def to_array(self) -> np.ndarray:
        """A copy of the frames held, oldest first, as [len, L, 2] (for tests and debugging; it allocates)."""
        count = int(self._state[1])
        if count == 0:
            return np.zeros((0, self.landmarks, 2), dtype=np.float32)
        slots = (int(self._state[0]) - count + np.arange(count)) % self.maxlen
        return self._data[slots].transpose(0, 2, 1).copy()


def window_span(frames: int, stride: int) -> int:
    """How many consecutive frames a window of ``frames`` frames taken every ``stride``-th covers."""
    if frames < 1 or stride < 1:
        raise ValueError(f"frames and stride must be at least 1, got frames={frames}, stride={stride}")
    return (frames - 1) * stride + 1
