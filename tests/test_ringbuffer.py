"""The numba ring buffer against collections.deque and against numpy slicing."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from edgeemo.ringbuffer import RingBuffer, window_span

L = 7


def frames(n: int, start: int = 0) -> list[np.ndarray]:
    """Distinct [L, 2] frames: frame i holds i + landmark / 100 in x and the negative in y."""
    return [
        np.stack([np.arange(L) / 100 + i, -(np.arange(L) / 100 + i)], axis=1).astype(np.float32)
        for i in range(start, start + n)
    ]


def reference_window(held: np.ndarray, n_frames: int, stride: int) -> np.ndarray:
    """The window by numpy slicing: newest last, every stride-th back from the newest, as [frames, 2, L]."""
    return np.ascontiguousarray(held[::-1][::stride][:n_frames][::-1].transpose(0, 2, 1))


@pytest.mark.parametrize("capacity", [0, 1, 2, 5, 16])
def test_matches_deque_through_wrap_around(capacity):
    rb, dq = RingBuffer(capacity, L), deque(maxlen=capacity)
    for frame in frames(3 * capacity + 4):
        rb.append(frame)
        dq.append(frame)
        assert len(rb) == len(dq)
        expected = np.array(dq, dtype=np.float32).reshape(len(dq), L, 2)
        np.testing.assert_array_equal(rb.to_array(), expected)
    assert rb.maxlen == capacity


def test_extend_equals_appends_and_accepts_float64_and_views():
    a, b = RingBuffer(5, L), RingBuffer(5, L)
    batch = np.stack(frames(8))
    a.extend(batch.astype(np.float64))
    for frame in batch:
        b.append(np.ascontiguousarray(frame.T).T)  # a transposed view, not C-contiguous
    np.testing.assert_array_equal(a.to_array(), b.to_array())
    np.testing.assert_array_equal(a.to_array(), batch[-5:])


@pytest.mark.parametrize(
    "n_frames,stride,appended",
    [(1, 1, 1), (4, 1, 4), (4, 1, 23), (4, 2, 7), (4, 2, 30), (3, 5, 11), (3, 5, 47), (16, 1, 40)],
    ids=lambda v: str(v),
)
def test_window_equals_numpy_slicing(n_frames, stride, appended):
    rb = RingBuffer.for_window(n_frames, stride, L)
    assert rb.maxlen == window_span(n_frames, stride)
    held = deque(maxlen=rb.maxlen)
    out = np.full((n_frames, 2, L), np.nan, dtype=np.float32)
    for frame in frames(appended):
        rb.append(frame)
        held.append(frame)
        if rb.is_full(n_frames, stride):
            assert rb.window(stride, n_frames, out) is out
            np.testing.assert_array_equal(out, reference_window(np.array(held), n_frames, stride))


def test_window_in_a_larger_buffer_takes_the_newest_frames():
    rb = RingBuffer(10, L)
    for frame in frames(26):
        rb.append(frame)
    out = np.empty((3, 2, L), dtype=np.float32)
    rb.window(3, 3, out)
    np.testing.assert_array_equal(out[:, 0, 0], [19, 22, 25])  # newest is frame 25


def test_is_full_and_clear():
    rb = RingBuffer.for_window(3, 2, L)  # span 5
    for i, frame in enumerate(frames(5)):
        assert rb.is_full(3, 2) is (i >= 5)
        rb.append(frame)
    assert rb.is_full(3, 2) and rb.is_full(5, 1) and not rb.is_full(6, 1)
    rb.clear()
    assert len(rb) == 0 and not rb.is_full(1, 1)
    np.testing.assert_array_equal(rb.to_array(), np.zeros((0, L, 2), np.float32))
    rb.append(frames(1, start=9)[0])
    np.testing.assert_array_equal(rb.to_array(), frames(1, start=9))


def test_capacity_zero_keeps_nothing():
    rb = RingBuffer(0, L)
    for frame in frames(3):
        rb.append(frame)
    assert len(rb) == 0 and not rb.is_full(1)


@pytest.mark.parametrize(
    "kwargs", [dict(capacity=-1, landmarks=L), dict(capacity=4, landmarks=0), dict(capacity=2.0, landmarks=L)]
)
def test_construction_checks(kwargs):
    with pytest.raises(ValueError):
        RingBuffer(**kwargs)


def test_bad_frames_and_windows_raise_instead_of_writing_out_of_bounds():
    rb = RingBuffer(4, L)
    with pytest.raises(ValueError, match=r"\[L, 2\]"):
        rb.append(np.zeros((L + 1, 2), np.float32))
    with pytest.raises(ValueError, match=r"\[L, 2\]"):
        rb.append(np.zeros((L, 3), np.float32))
    for frame in frames(4):
        rb.append(frame)
    with pytest.raises(ValueError, match="not enough frames"):
        rb.window(2, 3, np.empty((3, 2, L), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        rb.window(1, 2, np.empty((2, 2, L + 1), np.float32))
    with pytest.raises(ValueError, match="at least 1"):
        rb.window(0, 2, np.empty((2, 2, L), np.float32))
    with pytest.raises(ValueError, match="asked for"):
        rb.window(1, 2, np.empty((3, 2, L), np.float32))
    with pytest.raises(TypeError):  # the model layout is float32: no silent float64 window
        rb.window(1, 2, np.empty((2, 2, L), np.float64))
