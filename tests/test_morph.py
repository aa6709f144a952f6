"""Landmark-guided morphing of real photos (the demo clip and the runtime's test videos come from it)."""

import cv2
import numpy as np
import pytest

from offline.data.morph import load_face, morph, smile_clip


@pytest.fixture(scope="module")
def face(london_dev):
    neutral, pn = load_face(london_dev, "001", "neutral")
    smiling, ps = load_face(london_dev, "001", "smiling")
    return neutral, pn, smiling, ps


def test_the_ends_of_a_morph_are_the_two_photos(face):
    neutral, pn, smiling, ps = face
    start = morph(neutral, pn, smiling, ps, 0.0)
    end = morph(neutral, pn, smiling, ps, 1.0)
    assert np.abs(start.astype(int) - neutral).mean() < 1.0
    assert np.abs(end.astype(int) - smiling).mean() < 1.0


def test_smile_clip_holds_neutral_then_ramps_then_holds_the_smile(face):
    neutral, pn, smiling, ps = face
    frames = smile_clip(neutral, pn, smiling, ps, hold_neutral=3, onset=4, hold_smile=3, release=2)
    assert len(frames) == 3 + 4 + 3 + 2
    assert np.array_equal(frames[0], frames[2])
    assert np.array_equal(frames[7], frames[9])
    diffs = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(2, 7)]
    assert all(d > 0 for d in diffs)


def test_the_shipped_demo_clip_is_a_readable_video():
    from edgeemo.serve import DEMO_CLIP

    capture = cv2.VideoCapture(str(DEMO_CLIP))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 150
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30, abs=0.5)
