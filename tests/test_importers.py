"""Video and image-sequence extraction and the ckplus and videos importers, over real faces (London dev)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeemo.cli import main
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.normalize import NORMALIZATION
from offline.data.dataset import LandmarkDataset
from offline.data.extract import extract_images, extract_video, to_sample
from offline.data.importers import ckplus, videos
from tests.video_files import write_mjpg

REPO = Path(__file__).resolve().parents[1]
FPS = 10.0
SMILE_FRAMES = 10  # 3 neutral, 2 blank (no face), 2 blended towards the smile, 3 smiling
BLANK_AT = [3, 4]
MOUTH_LEFT, MOUTH_RIGHT = 61, 291


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    return write_mjpg(path, frames, FPS)


def neutral_to_smile(london_dev: Path, face_id: str) -> list[np.ndarray]:
    neutral = cv2.imread(str(london_dev / "images" / f"{face_id}_neutral.jpg"))
    smiling = cv2.imread(str(london_dev / "images" / f"{face_id}_smiling.jpg"))
    blended = [cv2.addWeighted(neutral, 1 - a, smiling, a, 0) for a in (1 / 3, 2 / 3)]
    return [neutral] * 3 + [np.zeros_like(neutral)] * 2 + blended + [smiling] * 3


def mouth_width(sample: np.ndarray, frame: int) -> float:
    """Distance between the mouth corners in frame ``frame`` of a sample [P, 2, 468]."""
    return float(np.linalg.norm(sample[frame, :, MOUTH_RIGHT] - sample[frame, :, MOUTH_LEFT]))


@pytest.fixture(scope="module")
def video_root(tmp_path_factory, london_dev) -> Path:
    """emotion folders: happiness/f001_smile.avi, surprise/f004-a.avi, anger/nobody_1.avi (blank), a stray file."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "happiness" / "f001_smile.avi", neutral_to_smile(london_dev, "001"))
    write_video(root / "surprise" / "f004-a.avi", neutral_to_smile(london_dev, "004")[::-1])
    write_video(root / "anger" / "nobody_1.avi", [np.zeros((240, 320, 3), np.uint8)] * 8)
    (root / "happiness" / "notes.txt").write_text("not a video\n")
    return root


@pytest.fixture(scope="module")
def smile_extraction(video_root):
    return extract_video(video_root / "happiness" / "f001_smile.avi")


def test_extract_video_finds_the_face_where_there_is_one(smile_extraction):
    e = smile_extraction
    assert e.points.shape == (SMILE_FRAMES, 468, 2) and e.points.dtype == np.float32
    assert e.fps == FPS
    assert np.flatnonzero(~e.found).tolist() == BLANK_AT and e.frames_no_face == 2
    assert np.isnan(e.points[BLANK_AT]).all() and np.isfinite(e.points[e.found]).all()
    assert (e.points[e.found] > 0).all() and (e.points[e.found] < 480).all()


def test_sample_of_a_smile_widens_the_mouth(smile_extraction):
    sample = to_sample(smile_extraction, 16, "smile")
    assert sample.shape == (16, 2, 468) and np.isfinite(sample).all()
    assert mouth_width(sample, -1) > mouth_width(sample, 0) * 1.05


def test_video_with_no_face_names_the_file(video_root):
    path = video_root / "anger" / "nobody_1.avi"
    with pytest.raises(EdgeemoError, match=r"nobody_1\.avi: no face found in any of its 8 frames"):
        to_sample(extract_video(path), 16, str(path))


def test_extract_images_reads_frames_in_name_order(tmp_path, london_dev):
    for name, face in (("b.png", "smiling"), ("a.png", "neutral")):
        image = cv2.imread(str(london_dev / "images" / f"001_{face}.jpg"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(tmp_path / name), image)
    e = extract_images([tmp_path / "b.png", tmp_path / "a.png"])
    assert e.found.all() and e.fps == 0.0
    sample = to_sample(e, 2, "pair")
    assert mouth_width(sample, 1) > mouth_width(sample, 0)


@pytest.fixture(scope="module")
def videos_folder_import(video_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "videos.npz"
    return out, videos.import_dataset(video_root, out=out, frames=12)


def test_videos_folder_import(video_root, videos_folder_import, capsys):
    out, dataset = videos_folder_import
    assert LandmarkDataset.load(out).X.shape == (2, 12, 2, 468)
    assert [EMOTIONS[y] for y in dataset.y] == ["happiness", "surprise"]
    assert dataset.subject.tolist() == ["f001", "f004"]
    assert dataset.source.tolist() == ["happiness/f001_smile.avi", "surprise/f004-a.avi"]
    assert set(dataset.segment) == {"onset"} and set(dataset.split) == {""}
    assert mouth_width(dataset.X[0], -1) > mouth_width(dataset.X[0], 0) * 1.05  # neutral to smile
    assert mouth_width(dataset.X[1], 0) > mouth_width(dataset.X[1], -1) * 1.05  # the reversed clip
    meta = dataset.meta
    assert meta["P"] == 12 and meta["frame_stride"] == "resampled" and meta["normalization"] == NORMALIZATION
    assert meta["extractor"].startswith("mediapipe 0.10.21 face_mesh tracking")
    assert meta["source_frames"] == {"min": SMILE_FRAMES, "median": SMILE_FRAMES, "max": SMILE_FRAMES}
    assert (meta["frames_total"], meta["frames_no_face"], meta["skipped"]) == (20, 4, 2)
    assert meta["skipped_reasons"] == {"no face found in any frame": 1, "not a video file (by its extension)": 1}

    out2 = out.with_name("again.npz")
    capsys.readouterr()
    again = videos.import_dataset(video_root, out=out2, frames=12, cache=out.with_name("videos.npz.cache"))
    printed = capsys.readouterr().out
    assert "cache: 3 of 3 sequences" in printed  # MediaPipe did not run
    assert "skipped 1: no face found in any frame (anger/nobody_1.avi)" in printed
    np.testing.assert_array_equal(again.X, dataset.X)


def test_videos_csv_import(video_root, videos_folder_import, tmp_path, capsys):
    table = tmp_path / "clips.csv"
    clips = ("happiness/f001_smile.avi", "surprise/f004-a.avi")
    smile, other = (os.path.relpath(video_root / clip, tmp_path) for clip in clips)
    table.write_text(f"path,label,subject\n{smile},Happiness,ann\n{other},surprise,bob\n")  # paths from the CSV
    dataset = videos.import_dataset(table, out=tmp_path / "csv.npz", frames=12)
    assert "cache: 0 of 2 sequences" in capsys.readouterr().out
    assert dataset.subject.tolist() == ["ann", "bob"] and [EMOTIONS[y] for y in dataset.y] == ["happiness", "surprise"]
    assert dataset.source.tolist() == [smile, other] and dataset.meta["skipped"] == 0
    np.testing.assert_allclose(dataset.X, videos_folder_import[1].X, atol=1e-5)


def write_ckplus(root: Path, london_dev: Path, sequences: dict[str, tuple[str, str | None]]) -> Path:
    """CK+'s layout: ``sequences`` maps "S010/001" to (London face id, emotion file text or None)."""
    for name, (face_id, label) in sequences.items():
        subject, number = name.split("/")
        folder = root / "cohn-kanade-images" / subject / number
        folder.mkdir(parents=True)
        for k, expression in enumerate(["neutral", "neutral", "smiling", "smiling"], start=1):
            gray = cv2.imread(str(london_dev / "images" / f"{face_id}_{expression}.jpg"), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(folder / f"{subject}_{number}_{k:08d}.png"), gray)
        labels = root / "Emotion" / subject / number
        labels.mkdir(parents=True)
        if label is not None:
            (labels / f"{subject}_{number}_00000004_emotion.txt").write_text(label)
    return root


def test_ckplus_import_and_its_cache(tmp_path, london_dev, capsys):
    root = write_ckplus(tmp_path / "CK+", london_dev, {
        "S010/001": ("001", "   5.0000000e+00\n"),  # happiness
        "S010/002": ("001", "   2.0000000e+00\n"),  # contempt: dropped
        "S011/001": ("004", None),  # no emotion file: skipped
        "S011/002": ("004", "   1.0000000e+00\n"),  # anger
    })
    out = tmp_path / "ck.npz"
    dataset = ckplus.import_dataset(root, out=out, frames=8)
    first = capsys.readouterr().out
    assert [EMOTIONS[y] for y in dataset.y] == ["happiness", "anger"]
    assert dataset.subject.tolist() == ["S010", "S011"] and dataset.source.tolist() == ["S010/001", "S011/002"]
    assert dataset.X.shape == (2, 8, 2, 468) and set(dataset.segment) == {"onset"}
    assert mouth_width(dataset.X[0], -1) > mouth_width(dataset.X[0], 0) * 1.05
    assert (dataset.meta["frames_total"], dataset.meta["frames_no_face"], dataset.meta["skipped"]) == (8, 0, 2)
    assert dataset.meta["skipped_reasons"] == {"labelled contempt (not one of the six emotions)": 1,
                                               "no emotion file": 1}
    assert "cache: 0 of 2 sequences" in first and "skipped 1: no emotion file (S011/001)" in first
    assert sorted(p.suffix for p in (tmp_path / "ck.npz.cache").iterdir()) == [".npz", ".npz"]

    # Run again in a fresh process: every sequence comes from the cache and MediaPipe is never even imported.
    code = "import sys; from edgeemo.cli import main; sys.exit(main(sys.argv[1:]) or 'mediapipe' in sys.modules)"
    argv = ["data", "ckplus", str(root), "--out", str(out), "--frames", "8"]
    again = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and "cache: 2 of 2 sequences" in again.stdout, again.stdout + again.stderr
    np.testing.assert_array_equal(LandmarkDataset.load(out).X, dataset.X)

    # A changed frame invalidates its sequence's entry only.
    frame = root / "cohn-kanade-images" / "S011" / "002" / "S011_002_00000004.png"
    cv2.imwrite(str(frame), cv2.imread(str(frame), cv2.IMREAD_GRAYSCALE)[:, ::-1])
    ckplus.import_dataset(root, out=out, frames=8)
    assert "cache: 1 of 2 sequences" in capsys.readouterr().out


def _garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(1).bytes(4000))
    return path


def _ck_tree(tmp: Path, london_dev: Path, label: str) -> Path:
    return write_ckplus(tmp / "ck", london_dev, {"S020/001": ("009", label)})


def _csv(tmp: Path, text: str) -> Path:
    _garbage(tmp / "x.avi")
    (tmp / "clips.csv").write_text(text)
    return tmp / "clips.csv"


def _blank_video(path: Path, frames: int) -> Path:
    return write_video(path, [np.zeros((96, 128, 3), np.uint8)] * frames)


# Each case builds its bad input under tmp; returns the arguments before --out and what the error line names.
def ckplus_missing_folder(tmp, london_dev):
    return ["ckplus", tmp / "nowhere"], "nowhere: no such folder"


def ckplus_without_emotion_folder(tmp, london_dev):
    root = _ck_tree(tmp, london_dev, "5")
    for f in (root / "Emotion" / "S020" / "001").iterdir():
        f.unlink()
    for folder in (root / "Emotion" / "S020" / "001", root / "Emotion" / "S020", root / "Emotion"):
        folder.rmdir()
    return ["ckplus", root], "Emotion: no such folder"


def ckplus_garbage_png(tmp, london_dev):
    root = _ck_tree(tmp, london_dev, "5")
    _garbage(root / "cohn-kanade-images" / "S020" / "001" / "S020_001_00000002.png")
    return ["ckplus", root], "S020_001_00000002.png: not an image"


def ckplus_malformed_label(tmp, london_dev):
    return ["ckplus", _ck_tree(tmp, london_dev, "three\n")], "S020_001_00000004_emotion.txt: expected one CK+"


def ckplus_unknown_label(tmp, london_dev):
    return ["ckplus", _ck_tree(tmp, london_dev, " 9.0000000e+00")], "S020_001_00000004_emotion.txt: unknown CK+"


def videos_missing_folder(tmp, london_dev):
    return ["videos", tmp / "nowhere"], "nowhere: no such folder or CSV file"


def videos_with_no_face(tmp, london_dev):
    _blank_video(tmp / "v" / "fear" / "blank_1.avi", 6)
    return ["videos", tmp / "v"], "fear/blank_1.avi: no face found"


def videos_garbage_avi(tmp, london_dev):
    _garbage(tmp / "v" / "anger" / "junk_1.avi")
    return ["videos", tmp / "v"], "junk_1.avi: not a video"


def videos_unknown_emotion_folder(tmp, london_dev):
    _blank_video(tmp / "v" / "joy" / "a_1.avi", 1)
    return ["videos", tmp / "v"], "joy (folder name): unknown emotion 'joy'"


def csv_unknown_label(tmp, london_dev):
    return ["videos", _csv(tmp, "path,label,subject\nx.avi,joy,ann\n")], "clips.csv:2: field label: unknown emotion"


def csv_missing_file(tmp, london_dev):
    return ["videos", _csv(tmp, "path,label,subject\ngone.avi,anger,ann\n")], "clips.csv:2: field path:"


def csv_bad_header(tmp, london_dev):
    return ["videos", _csv(tmp, "file,emotion\nx.avi,anger\n")], "clips.csv: header lacks path, label, subject"


BAD_INPUTS = [
    ckplus_missing_folder, ckplus_without_emotion_folder, ckplus_garbage_png, ckplus_malformed_label,
    ckplus_unknown_label, videos_missing_folder, videos_with_no_face, videos_garbage_avi,
    videos_unknown_emotion_folder, csv_unknown_label, csv_missing_file, csv_bad_header,
]


@pytest.mark.parametrize("make", BAD_INPUTS, ids=[f.__name__ for f in BAD_INPUTS])
@pytest.mark.parametrize("earlier_output", [False, True], ids=["no-output", "earlier-output"])
def test_bad_input_gives_one_line_and_keeps_output(tmp_path, london_dev, capsys, make, earlier_output):
    args, names = make(tmp_path, london_dev)
    out = tmp_path / "out" / "data.npz"
    if earlier_output:
        out.parent.mkdir()
        out.write_bytes(b"an earlier dataset")
    code = main(["data", *map(str, args), "--out", str(out), "--frames", "4"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and names in err, err
    if earlier_output:
        assert out.read_bytes() == b"an earlier dataset"
        assert [p.name for p in out.parent.iterdir() if p.name != "data.npz.cache"] == ["data.npz"]
    else:
        assert not out.exists()
