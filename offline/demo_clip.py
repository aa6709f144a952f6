"""Make the built-in demo clip that ``edgeemo serve --camera demo`` plays: a real face going from neutral
to a held smile and back, morphed from one London dev subject's neutral and smiling photos.

    python -m offline.demo_clip --london-dev offline/resources/london-dev

Photos: DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666, CC BY 4.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.io import atomic_path
from offline.morph import smile_clip

DEMO_PATH = Path(__file__).resolve().parents[1] / "edgeemo" / "resources" / "demo" / "smile.mp4"
FPS = 30


def load_face(london_dev: Path, face_id: str, expression: str) -> tuple[np.ndarray, np.ndarray]:
    """A London dev photo (BGR) and its MediaPipe landmarks in pixels [468, 2]."""
    image_path = london_dev / "images" / f"{face_id}_{expression}.jpg"
    image = cv2.imread(str(image_path))
    if image is None:
        raise EdgeemoError(f"{image_path}: missing or not an image")
    data = np.load(london_dev / "landmarks.npz")
    row = np.flatnonzero((data["face_id"] == face_id) & (data["expression"] == expression))
    if len(row) != 1:
        raise EdgeemoError(f"{london_dev / 'landmarks.npz'}: no landmarks for face {face_id} {expression}")
    height, width = image.shape[:2]
    return image, data["landmarks"][row[0], :, :2] * np.array([width, height], np.float32)


def write_video(path: Path, frames: list[np.ndarray], fps: float = FPS) -> None:
    height, width = frames[0].shape[:2]
    with atomic_path(path, suffix=path.suffix) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise EdgeemoError(f"{path}: OpenCV cannot write mp4v video here")
        for frame in frames:
            writer.write(frame)
        writer.release()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the built-in demo clip.")
    parser.add_argument("--london-dev", type=Path, default=Path(__file__).parent / "resources" / "london-dev")
    parser.add_argument("--face", default="001")
    parser.add_argument("--out", type=Path, default=DEMO_PATH)
    args = parser.parse_args(argv)
    neutral, neutral_points = load_face(args.london_dev, args.face, "neutral")
    smiling, smiling_points = load_face(args.london_dev, args.face, "smiling")
    frames = smile_clip(neutral, neutral_points, smiling, smiling_points,
                        hold_neutral=30, onset=15, hold_smile=60, release=15)
    frames += [frames[0]] * 30  # back to neutral, held
    write_video(args.out, frames)
    print(f"wrote {args.out}: {len(frames)} frames at {FPS} fps")


if __name__ == "__main__":
    main()
