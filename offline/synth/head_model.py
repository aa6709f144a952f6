"""Derive the 3-D head that ``edgeemo.head_pose`` fits each face's landmarks to, and write it into the package.

    python -m offline.synth.head_model

The head is ``offline.synth.faces.canonical_face()`` (the London dev mean neutral face in the face frame,
1 unit tall) turned by the photos' mean head pose (``photo_pose``: people looking into the camera), so a
face looking into the camera, as the London dev people do, has yaw, pitch and roll 0, and the poses
the synthetic training data spread about that centre (``offline.synth.render``) read as offsets from 0.
A test re-derives it and checks the shipped file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgeemo.head_pose import HEAD_MODEL_PATH, POSE_POINTS
from edgeemo.io import atomic_save_npz
from offline.synth.faces import canonical_face, photo_pose
from offline.synth.render import rotations


def derive_head_model() -> dict[str, np.ndarray]:
    turn = rotations(photo_pose()[None])[0]
    return {
        "points": (canonical_face() @ turn.T).astype(np.float32),
        "pose_points": np.asarray(POSE_POINTS, dtype=np.int16),
        "photo_pose_deg": np.degrees(photo_pose()).astype(np.float32),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HEAD_MODEL_PATH)
    args = parser.parse_args(argv)
    atomic_save_npz(args.out, **derive_head_model())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
