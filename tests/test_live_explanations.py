"""``serve --explain``: explanations in the stream, in the contract, and in ``edgeemo subscribe``'s lines."""

import numpy as np
import pytest

from edgeemo.commands.subscribe import format_message
from edgeemo.errors import EdgeemoError
from edgeemo.messages import build_prediction, pack, prediction_topic, unpack
from tests.conftest import REPO
from tests.serve_helpers import messages_until_shutdown, serving

BUNDLE = REPO / "edgeemo" / "models" / "default"
EXPLANATION = {"emotion": "happiness", "baseline": "canonical_rest", "score": 0.9, "baseline_score": 0.05,
               "residual": 1e-8, "regions": {"mouth_corners": 0.7, "outer_cheeks": np.float32(0.15)},
               "landmarks": {"61": 0.2}, "seconds": 0.004}


def _prediction(explanation):
    return build_prediction(stream="cam0", seq=0, t_capture=1.0, t_publish=1.1, face_found=True, scores=[0.1] * 6,
                            label="neutral", landmarks=227, k=dict.fromkeys(("anger", "disgust", "fear", "happiness",
                                                                              "sadness", "surprise"), 64),
                            bundle="b", latency=dict.fromkeys(("capture", "wait", "landmarks", "classify", "publish",
                                                               "total"), 0.001), explanation=explanation)


def test_an_explanation_round_trips_as_plain_msgpack_and_a_bad_one_is_refused():
    message = unpack(prediction_topic("cam0"), pack(_prediction(dict(EXPLANATION))))
    assert message["explanation"]["regions"] == {"mouth_corners": 0.7, "outer_cheeks": pytest.approx(0.15)}
    assert type(message["explanation"]["regions"]["outer_cheeks"]) is float
    assert "explanation" not in unpack(prediction_topic("cam0"), pack(_prediction(None)))
    with pytest.raises(EdgeemoError, match="explanation.regions"):
        _prediction({**EXPLANATION, "regions": [0.7]})
    with pytest.raises(EdgeemoError, match="explanation.emotion"):
        _prediction({**EXPLANATION, "emotion": "joy"})
    bad = _prediction(dict(EXPLANATION))
    bad["explanation"]["residual"] = "small"
    with pytest.raises(EdgeemoError, match="explanation.residual"):
        unpack(prediction_topic("cam0"), pack(bad))
    line = format_message(message)
    assert line.endswith("| happiness 0.90 (rest 0.05): mouth_corners +0.70, outer_cheeks +0.15 [res 1e-08]")


def test_serve_explain_on_the_demo_smile_names_the_mouth_and_cheeks():
    """The demo clip (London face 001: neutral, then a real smile), every prediction explained."""
    with serving("--camera", "demo", "--model", str(BUNDLE), "--fast", "--explain") as (process, sub, _):
        messages = messages_until_shutdown(sub, process)
    predictions = [m for m in messages if m["kind"] == "prediction"]
    explained = [m for m in predictions if "explanation" in m]
    assert predictions and len(explained) == len(predictions)
    for m in explained:
        e = m["explanation"]
        assert e["emotion"] == max(m["scores"], key=m["scores"].get) and e["score"] == m["scores"][e["emotion"]]
        assert abs(e["residual"]) <= 0.01 * abs(e["score"] - e["baseline_score"]) + 1e-6
    smiling = [m["explanation"] for m in explained if m["label"] == "happiness"]
    assert smiling, "the demo smile was never labelled happiness"
    top = [max(e["regions"], key=e["regions"].get) for e in smiling]
    assert np.mean([t in ("mouth_corners", "inner_cheeks", "outer_cheeks") for t in top]) >= 0.9


def test_explain_every_n_and_on_every_label_change_and_a_named_emotion():
    with serving("--camera", "demo", "--model", str(BUNDLE), "--fast", "--explain", "--explain-every", "10",
                 "--explain-emotion", "disgust", "--explain-landmarks") as (process, sub, _):
        messages = messages_until_shutdown(sub, process)
    predictions = [m for m in messages if m["kind"] == "prediction"]
    has = ["explanation" in m for m in predictions]
    changed = [i == 0 or m["label"] != predictions[i - 1]["label"] for i, m in enumerate(predictions)]
    assert all(h for h, c in zip(has, changed) if c)  # every change explained
    assert has[::10] == [True] * len(has[::10])
    assert sum(has) < len(has) / 3  # and not every prediction
    named = [m for m in predictions if "explanation" in m]
    assert all(m["explanation"]["emotion"] == "disgust" for m in named)
    assert all(m["explanation"]["score"] == m["scores"]["disgust"] for m in named)
    assert all(0 < len(m["explanation"]["landmarks"]) <= 10 for m in named)


def test_show_colours_the_regions_that_moved_the_score(london_dev):
    from prometheus_client import CollectorRegistry

    from edgeemo.bundle import load_bundle
    from edgeemo.landmarker import FaceMeshLandmarker
    from edgeemo.live_explanations import LiveExplanations, region_colours
    from edgeemo.metrics import Metrics
    from edgeemo.publisher import PredictionPublisher
    from edgeemo.regions import REGIONS, region_of_landmark
    from edgeemo.serve import StreamProcessor, draw_overlay
    from edgeemo.streaming import make_classifier
    from offline.data.morph import load_face

    face, _ = load_face(london_dev, "001", "smiling")
    bundle = load_bundle(BUNDLE)
    classifier = make_classifier(bundle)
    with PredictionPublisher("tcp://127.0.0.1:*") as publisher, FaceMeshLandmarker(static=False) as landmarker:
        processor = StreamProcessor("show", bundle, classifier, landmarker, publisher,
                                    Metrics(CollectorRegistry()).stream("show"),
                                    explain=LiveExplanations)
        for i in range(45):
            processor.process(face, i / 30, 0.0)
    (track,) = processor.tracks.values()  # the one face in view
    explained = track.explanations.last
    assert explained is not None and explained["emotion"] == "happiness"
    union = track.path.union  # a smile from the first frame: still judged by the uncalibrated models
    colours = region_colours(explained, union).astype(int)
    owner = region_of_landmark()[union]
    corners = colours[owner == REGIONS.index("mouth_corners")]
    assert (corners[:, 2] > corners[:, 0] + 100).all()  # red (BGR): the smile's corners raised the score
    view = draw_overlay(face, processor)
    x, y = track.last_points[61].astype(int)
    assert view[y, x, 2] > view[y, x, 0] + 100
