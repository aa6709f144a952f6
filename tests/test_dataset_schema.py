"""The dataset file's schema version (docs/contracts/dataset.md): written, checked, and tolerant of the past."""

import json

import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from offline.data.dataset import SCHEMA_VERSION, LandmarkDataset


def _arrays(n=2, frames=3) -> dict:
    """The arrays of a valid dataset file, as written before the version was stored."""
    return {
        "X": np.zeros((n, frames, 2, 468), np.float32), "y": np.array([3, -1], np.int8)[:n],
        "subject": np.array(["S1", "S2"][:n]), "source": np.array(["a", "b"][:n]),
        "segment": np.array(["onset", "neutral"][:n]), "split": np.array(["", ""][:n]),
        "meta": np.array(json.dumps({"P": frames, "frame_stride": 1, "normalization": "x", "extractor": "test"})),
    }


def test_save_writes_the_schema_version(tmp_path):
    np.savez(tmp_path / "old.npz", **_arrays())
    LandmarkDataset.load(tmp_path / "old.npz").save(tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as saved:
        assert int(saved["schema_version"]) == 1  # absolute data: still written as 1


def test_a_file_without_a_version_or_optional_arrays_reads_as_version_1(tmp_path):
    arrays = _arrays()
    del arrays["segment"], arrays["split"]
    arrays["y"] = np.array([3, 1], np.int8)
    np.savez(tmp_path / "old.npz", **arrays)
    dataset = LandmarkDataset.load(tmp_path / "old.npz")
    assert dataset.segment.tolist() == ["onset", "onset"] and dataset.split.tolist() == ["", ""]


def test_unknown_arrays_are_ignored(tmp_path):
    np.savez(tmp_path / "more.npz", **_arrays(), schema_version=np.array(SCHEMA_VERSION), confidence=np.ones(2))
    assert len(LandmarkDataset.load(tmp_path / "more.npz")) == 2


@pytest.mark.parametrize(
    ("version", "message"),
    [(np.array(SCHEMA_VERSION + 1), "newer than this edgeemo reads"), (np.array(0), "not a valid version"),
     (np.array([1, 1]), "should be one integer"), (np.array("1"), "should be one integer")],
    ids=["newer", "zero", "array", "string"],
)
def test_a_version_this_reader_cannot_trust_is_refused_naming_the_field(tmp_path, version, message):
    np.savez(tmp_path / "d.npz", **_arrays(), schema_version=version)
    with pytest.raises(EdgeemoError, match=rf"d\.npz: .*schema_version.*{message}"):
        LandmarkDataset.load(tmp_path / "d.npz")
