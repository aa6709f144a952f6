"""Each frame's encoding and capture time, in a ring buffer compiled with numba; windows picked by time.

The models were trained on windows of P frames ``step`` seconds apart (the bundle's frame interval times
its frame stride). A window ending at the newest frame, time ``t``, needs frames at ``t - (P-1-i) * step``
for i = 0 .. P-1; ``window`` takes, for each, the held frame nearest that time, and returns the largest
time error it had to accept. The caller refuses a window whose error exceeds its tolerance (frames dropped,
a stall) instead of classifying a window stretched in time, which is what counting frames did at 15 or
60 fps, when frames were dropped, or when several streams shared one loop.

Invariants (``_state`` is int64 [2] = [head, count]; ``capacity`` = ``_data.shape[0]``), as in
edgeemo.ringbuffer: ``head`` is the slot the next append writes, the i-th newest frame is at
``(head - 1 - i) % capacity``; times only grow (an append older than the newest frame is refused).

Not thread-safe: one buffer per stream (or face track), used from one thread.
"""

from __future__ import annotations

import math

import numpy as np
from numba import boolean, float32, float64, int64, njit

_DATA = float32[:, ::1]
_TIMES = float64[::1]
_STATE = int64[::1]


@njit(boolean(_DATA, _TIMES, _STATE, float32[::1], float64), cache=True)
def _append(data, times, state, encoding, at):
    """Add one frame; False (nothing written) if ``at`` is before the newest frame's time."""
    if encoding.shape[0] != data.shape[1]:
        raise ValueError("TimedBuffer.append: encoding must have the buffer's width")
    capacity = data.shape[0]
    head = state[0]
    if state[1] and at < times[(head - 1) % capacity]:
        return False
    data[head, :] = encoding
    times[head] = at
    state[0] = head + 1 if head + 1 < capacity else 0
    if state[1] < capacity:
        state[1] += 1
    return True


@njit(boolean(_TIMES, _STATE, float64, float64), cache=True)
def _covers(times, state, span, tolerance):
    count, capacity = state[1], times.shape[0]
    if not count:
        return False
    return times[(state[0] - count) % capacity] <= times[(state[0] - 1) % capacity] - span + tolerance


@njit(float64(_DATA, _TIMES, _STATE, float64, float32[:, ::1], float64[::1]), cache=True)
def _window(data, times, state, step, out, picked):
    """Fill ``out`` [P, E] with the frames nearest the P target times (oldest first), ``picked`` [P] with
    their times; return the largest |picked - target|. The buffer must hold at least one frame."""
    frames = out.shape[0]
    if out.shape[1] != data.shape[1] or picked.shape[0] != frames:
        raise ValueError("TimedBuffer.window: out must be [P, E] with the buffer's E, picked [P]")
    capacity, count = data.shape[0], state[1]
    newest = state[0] - 1 + capacity
    end = times[newest % capacity]
    worst = 0.0
    age = 0  # how many frames back from the newest the search stands; targets only move back in time
    for k in range(frames - 1, -1, -1):
        target = end - (frames - 1 - k) * step
        # Walk back while the next older frame is at least as close to the target.
        while age + 1 < count and abs(times[(newest - age - 1) % capacity] - target) <= \
                abs(times[(newest - age) % capacity] - target):
            age += 1
        slot = (newest - age) % capacity
        out[k, :] = data[slot]
        picked[k] = times[slot]
        error = abs(times[slot] - target)
        if error > worst:
            worst = error
    return worst


class TimedBuffer:
    """The last ``capacity`` frames' float32 [E] encodings and float64 capture times (seconds)."""

    def __init__(self, capacity: int, width: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"TimedBuffer: capacity must be an integer >= 1, got {capacity!r}")
        self._data = np.zeros((int(capacity), int(width)), np.float32)
        self._times = np.zeros(int(capacity), np.float64)
        self._state = np.zeros(2, np.int64)

    @classmethod
    def for_window(cls, window_s: float, width: int, max_fps: float) -> TimedBuffer:
        """Room for one window of ``window_s`` seconds (plus one frame either side) at up to ``max_fps``."""
        return cls(math.ceil(window_s * max_fps) + 2, width)

    @property
    def capacity(self) -> int:
        return self._data.shape[0]

    def __len__(self) -> int:
        return int(self._state[1])

    @property
    def newest_time(self) -> float | None:
        return float(self._times[(self._state[0] - 1) % self.capacity]) if self._state[1] else None

    def append(self, encoding: np.ndarray, at: float) -> None:
        """Add one frame's encoding, float32 [E], captured at ``at`` seconds (not before the newest frame)."""
        if not self.push(encoding, at):
            raise ValueError(f"TimedBuffer.append: time {at} is before the newest frame's {self.newest_time}")

    def push(self, encoding: np.ndarray, at: float) -> bool:
        """``append``, but False instead of an error for a time before the newest frame's (nothing added)."""
        return _append(self._data, self._times, self._state, encoding, float(at))

    def clear(self) -> None:
        self._state[:] = 0

    def covers(self, span_s: float, tolerance_s: float) -> bool:
        """Whether the frames held reach back ``span_s`` before the newest, within ``tolerance_s``: false
        while a window fills (after start, or after the face came back), and not an error then."""
        return _covers(self._times, self._state, float(span_s), float(tolerance_s))

    def window(self, step_s: float, out: np.ndarray, picked: np.ndarray) -> float:
        """Write the P = len(out) frames nearest the times ``step_s`` apart ending at the newest frame into
        ``out`` (float32 [P, E]) and their times into ``picked`` (float64 [P]); return the worst time error
        in seconds. Allocates nothing."""
        if not self._state[1]:
            raise ValueError("TimedBuffer.window: the buffer is empty")
        return _window(self._data, self._times, self._state, float(step_s), out, picked)
