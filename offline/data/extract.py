"""Face-mesh landmarks of a video or an image sequence, and one dataset sample made from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS
from edgeemo.landmarker import FaceMeshLandmarker
from edgeemo.normalize import normalize_landmarks
from offline.data.sequence import fill_missing, resample


@dataclass
class Extraction:
    points: np.ndarray  # float32 [T, 468, 2] pixel coordinates; NaN in frames where no face was found
    found: np.ndarray  # bool [T]
    fps: float  # frames per second of a video; 0.0 for an image sequence (unknown)

    @property
    def frames_no_face(self) -> int:
        return int((~self.found).sum())


def _landmarks(frames: Iterator[np.ndarray], landmarker: FaceMeshLandmarker) -> tuple[np.ndarray, np.ndarray]:
    """Track one face through RGB frames: (points [T, 468, 2] with NaN where none, found [T])."""
    landmarker.reset()  # a new sequence: the previous one's face must not seed the tracking
    no_face = np.full((N_LANDMARKS, 2), np.nan, dtype=np.float32)
    points = []
    for rgb in frames:
        detected = landmarker.detect(rgb)
        points.append(no_face if detected is None else detected)
    if not points:
        return np.empty((0, N_LANDMARKS, 2), dtype=np.float32), np.empty(0, dtype=bool)
    stacked = np.stack(points)
    return stacked, np.isfinite(stacked[:, 0, 0])


def _video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        # OpenCV decodes to BGR and MediaPipe wants RGB; the landmarker takes RGB so only readers convert.
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def extract_video(path: Path, landmarker: FaceMeshLandmarker | None = None) -> Extraction:
    """Landmarks of every frame of a video file, in tracking mode (pass a landmarker to reuse one)."""
    if landmarker is None:
        with FaceMeshLandmarker(static=False) as own:
            return extract_video(path, own)
    if not path.is_file():
        raise EdgeemoError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise EdgeemoError(f"{path}: not a video OpenCV can read")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        points, found = _landmarks(_video_frames(capture), landmarker)
    finally:
        capture.release()
    if not len(found):
        raise EdgeemoError(f"{path}: not a video OpenCV can read (no frame could be decoded)")
    return Extraction(points, found, fps)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB; grayscale (as CK+) and 16-bit images are converted too."""
    if not path.is_file():
        raise EdgeemoError(f"{path}: no such image file")
    # IMREAD_COLOR gives 3-channel 8-bit BGR whatever the file holds; MediaPipe wants RGB (see _video_frames).
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise EdgeemoError(f"{path}: not an image OpenCV can read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def extract_images(paths: Sequence[Path], landmarker: FaceMeshLandmarker | None = None) -> Extraction:
    """Landmarks of the frames of one sequence given as image files, in name order (one person: tracking)."""
    if landmarker is None:
        with FaceMeshLandmarker(static=False) as own:
            return extract_images(paths, own)
    ordered = sorted(paths, key=lambda p: p.name)
    points, found = _landmarks((read_rgb(p) for p in ordered), landmarker)
    return Extraction(points, found, 0.0)


def to_sample(extraction: Extraction, frames: int, where: str) -> np.ndarray:
    """One dataset sample float32 [frames, 2, 468]: gaps filled, normalised per frame, resampled in time.

    Raises EdgeemoError "<where>: no face found in any of its N frames" when no frame has a face.
    """
    filled = fill_missing(extraction.points, where)
    return resample(normalize_landmarks(filled), frames).transpose(0, 2, 1)
