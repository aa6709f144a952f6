"""The landmark dataset file: contract checks, atomic save, clear errors."""

import json

import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from offline.data.dataset import LandmarkDataset
from offline.data.sequence import fill_missing, resample


def _dataset(n=6, frames=4) -> LandmarkDataset:
    rng = np.random.default_rng(0)
    return LandmarkDataset(
        X=rng.random((n, frames, 2, 468), dtype=np.float32),
        y=np.arange(n) % 6,
        subject=[f"S{i // 2}" for i in range(n)],
        source=[f"clip{i}" for i in range(n)],
        segment=["onset"] * n,
        split=["train", "train", "train", "train", "test", "test"][:n],
        meta={"P": frames, "frame_stride": 1, "normalization": "x", "extractor": "test"},
    )


def test_round_trip_keeps_every_field(tmp_path):
    ds = _dataset()
    ds.save(tmp_path / "d.npz")
    back = LandmarkDataset.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.y, ds.y)
    assert back.subject.tolist() == ds.subject.tolist() and back.split.tolist() == ds.split.tolist()
    assert back.meta == ds.meta
    assert back.X.dtype == np.float32 and back.y.dtype == np.int8


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: setattr(d, "X", d.X[:, :, :, :400]), "field X"),
        (lambda d: d.X.__setitem__((0, 0, 0, 0), np.nan), "NaN"),
        (lambda d: d.y.__setitem__(0, 9), "field y"),
        (lambda d: d.segment.__setitem__(0, "peak"), "field segment"),
        (lambda d: d.meta.pop("P"), "field meta lacks P"),
        (lambda d: d.split.__setitem__(4, "train"), "both train and test"),
    ],
    ids=["landmarks", "nan", "label", "segment", "meta", "subject-in-two-splits"],
)
def test_bad_dataset_is_refused_and_nothing_is_overwritten(tmp_path, change, field):
    out = tmp_path / "d.npz"
    out.write_bytes(b"previous result")
    ds = _dataset()
    change(ds)
    with pytest.raises(EdgeemoError, match=field) as info:
        ds.save(out)
    assert "\n" not in str(info.value)
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


def test_load_names_the_file_and_the_missing_field(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((1, 2, 2, 468), np.float32), y=np.zeros(1, np.int8), meta=json.dumps({}))
    with pytest.raises(EdgeemoError, match=r"bad\.npz: field subject is missing"):
        LandmarkDataset.load(bad)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(EdgeemoError, match=r"garbage\.npz: not a readable"):
        LandmarkDataset.load(garbage)
    with pytest.raises(EdgeemoError, match=r"missing\.npz: no such dataset file"):
        LandmarkDataset.load(tmp_path / "missing.npz")


def test_summary_counts_sequences_per_emotion_and_split():
    text = _dataset().summary()
    assert "6 sequences of 4 frames, 3 subjects" in text
    assert "4 train (2 subjects), 2 test (1 subjects)" in text
    assert "happiness" in text


def test_fill_missing_interpolates_and_holds_the_ends():
    seq = np.arange(5, dtype=np.float32)[:, None].repeat(3, axis=1)
    seq[[0, 2]] = np.nan
    np.testing.assert_allclose(fill_missing(seq)[:, 0], [1, 1, 2, 3, 4])
    with pytest.raises(EdgeemoError, match="clip.avi: no face found in any of its 2 frames"):
        fill_missing(np.full((2, 3), np.nan), where="clip.avi")


def test_resample_keeps_first_and_last_frame():
    seq = np.arange(7, dtype=np.float32)[:, None]
    out = resample(seq, 4)
    np.testing.assert_allclose(out[:, 0], [0, 2, 4, 6])
    np.testing.assert_allclose(resample(seq[:1], 3)[:, 0], [0, 0, 0])
