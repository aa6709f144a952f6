"""Make the built-in demo clip that ``edgeemo serve --camera demo`` plays: a real face going from neutral
to a held smile and back, morphed from one London dev subject's neutral and smiling photos.

    python scripts/make_demo_clip.py [--london-dev offline/resources/london-dev] [--out FILE]

Photos: DeBruine & Jones (2017), Face Research Lab London Set, doi:10.6084/m9.figshare.5047666, CC BY 4.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeemo.serve import DEMO_CLIP
from offline.data.morph import FPS, load_face, smile_clip, write_video

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the built-in demo clip.")
    parser.add_argument("--london-dev", type=Path, default=REPO / "offline" / "resources" / "london-dev")
    parser.add_argument("--face", default="001")
    parser.add_argument("--out", type=Path, default=DEMO_CLIP)
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
