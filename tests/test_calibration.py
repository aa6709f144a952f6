"""Per-person calibration in the runtime (docs/calibration.md): the rest estimator on real tracked faces
(London dev photos through MediaPipe and serve's per-frame path), the calibrated bundle, the prediction's
``calibration`` map, and "this is rest now" over HTTP."""

from __future__ import annotations

import functools
import json
import re
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from edgeemo.bundle import load_bundle, write_manifest
from edgeemo.commands.subscribe import format_message
from edgeemo.calibration import (RestEstimator, RestSettings, _median_and_spread, median_face,
                                 smile_was_the_rest)
from edgeemo.errors import EdgeemoError
from edgeemo.landmarker import FaceMeshLandmarker
from edgeemo.messages import build_prediction
from edgeemo.metrics import Metrics, serve_metrics
from edgeemo.normalize import normalize_landmarks
from edgeemo.publisher import PredictionPublisher
from edgeemo.serve import REST_PATH, StreamProcessor, _rest_request
from edgeemo.streaming import make_classifier

PERSON = "009"  # the absolute default calls this resting face neutral and this smile happiness (score 1.0)
MISSED = "124"  # ... and this smile neutral (happiness 0.2): appearing with it, it is taken for the rest
FPS = 30


def _photo(london_dev, face: str, kind: str) -> np.ndarray:
    return cv2.imread(str(london_dev / "images" / f"{face}_{kind}.jpg"))


class _Run:
    """Frames through serve's per-frame path at 30 fps video time; keeps every payload."""

    def __init__(self, bundle_path, calibration: str = "auto") -> None:
        self.registry = CollectorRegistry()
        self.bundle = load_bundle(bundle_path)
        self.publisher = PredictionPublisher("tcp://127.0.0.1:*")
        self.landmarker = FaceMeshLandmarker(static=False)
        self.processor = StreamProcessor("cal", self.bundle, make_classifier(self.bundle), self.landmarker,
                                         self.publisher, Metrics(self.registry).stream("cal"),
                                         calibration=calibration)
        self.processor.frame_interval_s = 1 / FPS
        self.payloads: list[tuple[int, dict]] = []
        self.frames = 0

    def feed(self, frame: np.ndarray, count: int) -> None:
        for _ in range(count):
            self.frames += 1
            for payload in self.processor.process(frame, self.frames / FPS, 0.0):
                self.payloads.append((self.frames, payload))

    def rests(self) -> float:
        return self.registry.get_sample_value("edgeemo_rests_established_total", {"stream": "cal"})

    def close(self) -> None:
        self.landmarker.close()
        self.publisher.close()


@pytest.fixture()
def run(calibrated_bundle):
    runs = []

    def make(calibration: str = "auto", bundle=None) -> _Run:
        runs.append(_Run(bundle or calibrated_bundle, calibration))
        return runs[-1]

    yield make
    for r in runs:
        r.close()


def test_rest_is_found_on_a_still_real_face_and_every_prediction_says_so(run, london_dev):
    r = run()
    neutral = _photo(london_dev, PERSON, "neutral")
    r.feed(neutral, 60)
    states = [p["calibration"] for _, p in r.payloads]
    assert states and all(s["mode"] == "auto" for s in states)
    # Established by the frame of the first window (about a second in): every prediction is calibrated.
    assert all(s["calibrated"] and s["how"] == "auto" for s in states)
    assert r.payloads[0][0] <= 36 and r.rests() == 1
    assert all(p["label"] == "neutral" for _, p in r.payloads)
    ages = [s["age_s"] for s in states]
    assert ages == sorted(ages) and ages[0] == 0.0
    # The rest is this face: within jitter of its own normalised landmarks, far from the canonical face's.
    track = next(iter(r.processor.tracks.values()))
    own = normalize_landmarks(track.last_points)
    assert np.sqrt(((track.rest.rest - own) ** 2).sum(1).mean()) < 0.002


def test_an_opening_smile_does_not_become_the_rest(run, london_dev):
    r = run()
    smiling, neutral = _photo(london_dev, PERSON, "smiling"), _photo(london_dev, PERSON, "neutral")
    r.feed(smiling, 75)  # 2.5 s smiling from the first frame: the uncalibrated models see it and veto
    assert r.payloads and all(not p["calibration"]["calibrated"] for _, p in r.payloads)
    assert all(p["label"] == "happiness" for _, p in r.payloads)  # the uncalibrated label is kept
    track = next(iter(r.processor.tracks.values()))
    smile_face = normalize_landmarks(track.last_points)
    assert "finding rest" in format_message(r.payloads[-1][1])  # what `edgeemo subscribe` prints
    r.feed(neutral, 75)
    assert track.rest.calibrated and r.rests() == 1
    assert re.search(r"  rest \d+ s ", format_message(r.payloads[-1][1]))
    rest_face = normalize_landmarks(track.last_points)
    distance = lambda a, b: np.sqrt(((a - b) ** 2).sum(1).mean())  # noqa: E731
    assert distance(track.rest.rest, rest_face) < distance(track.rest.rest, smile_face) / 3
    assert r.payloads[-1][1]["label"] == "neutral"


def test_a_missed_smile_taken_for_the_rest_is_replaced_once_the_face_relaxes(run, london_dev):
    r = run()
    smiling, neutral = _photo(london_dev, MISSED, "smiling"), _photo(london_dev, MISSED, "neutral")
    r.feed(smiling, 60)
    assert r.rests() == 1 and r.payloads[-1][1]["calibration"]["calibrated"], \
        f"precondition: the uncalibrated models should miss person {MISSED}'s smile, so it becomes the rest"
    assert all(p["label"] != "happiness" for _, p in r.payloads)
    r.feed(neutral, 90)  # against the smile the relaxed face reads as an emotion: the second look
    assert r.rests() == 2
    track = next(iter(r.processor.tracks.values()))
    relaxed = normalize_landmarks(track.last_points)
    assert np.sqrt(((track.rest.rest - relaxed) ** 2).sum(1).mean()) < 0.002  # the relaxed face is the rest
    labels = [p["label"] for _, p in r.payloads[-30:]]
    assert labels == ["neutral"] * 30 and r.payloads[-1][1]["calibration"]["how"] == "auto"
    r.feed(smiling, 45)
    assert r.payloads[-1][1]["label"] == "happiness"  # the smile is read as one now


def test_a_smile_held_after_the_rest_never_replaces_it(run, london_dev):
    for person in (PERSON, MISSED):
        r = run()
        r.feed(_photo(london_dev, person, "neutral"), 45)
        assert r.rests() == 1
        count = len(r.payloads)
        r.feed(_photo(london_dev, person, "smiling"), 150)  # 5 s still: the second look runs, and keeps the rest
        assert r.rests() == 1
        assert all(p["label"] == "happiness" for _, p in r.payloads[count + 16:])


@pytest.mark.parametrize("streaming", [True, False])
def test_a_still_face_is_scored_as_a_window_of_it_would_be(calibrated_bundle, london_dev, streaming):
    from edgeemo.model_path import ModelPath

    bundle = load_bundle(calibrated_bundle).uncalibrated
    with FaceMeshLandmarker(static=True) as landmarker:
        face = normalize_landmarks(landmarker.detect(cv2.cvtColor(_photo(london_dev, MISSED, "smiling"),
                                                                  cv2.COLOR_BGR2RGB)))[bundle.landmarks_union]
    path = ModelPath(bundle, make_classifier(bundle, streaming=streaming))
    for i in range(40):
        path.append(face, i / FPS)
    fed = path.classifier.classify(path.window()).copy()
    still = path.classify_still(face)
    np.testing.assert_allclose(still, fed, atol=1e-6)
    assert path.classify_still(face + 0.01) is not still and not np.allclose(path.classify_still(face + 0.01), fed)


def test_the_second_look_takes_a_missed_smile_only():
    thresholds = np.full(6, 0.5)
    happy = np.eye(6)[3] * 0.99  # the old rest read against the still state: a smile
    quiet, quieter = np.full(6, 0.2), np.full(6, 0.1)
    assert smile_was_the_rest(happy, quiet, quieter, thresholds, thresholds)
    assert not smile_was_the_rest(happy, quieter, quiet, thresholds, thresholds)  # the rest scored less happy
    assert not smile_was_the_rest(np.eye(6)[4], quiet, quieter, thresholds, thresholds)  # sadness: not a smile
    expressive = quieter.copy()
    expressive[5] = 0.7  # the still state is a surprise to the uncalibrated models
    assert not smile_was_the_rest(happy, quiet, expressive, thresholds, thresholds)


@pytest.mark.offline
def test_the_second_look_on_synthetic_people_takes_smiles_and_nothing_else(calibrated_bundle, tmp_path):
    """People the bundle never saw (seed 5), each expression held still: a rest is never taken for a smile
    against any held expression, and every smile that would be taken for the rest (one the uncalibrated models
    miss, and the calibrated ones read as happiness against the person's rest) is found once they relax."""
    from edgeemo.emotions import EMOTIONS
    from edgeemo.model_path import ModelPath
    from edgeemo.calibration import canonical_face
    from offline.synth.synthesize import synthesize

    data = synthesize(out=tmp_path / "unseen.npz", sequences=150, subjects=30, seed=5)
    bundle = load_bundle(calibrated_bundle)
    classifier = make_classifier(bundle)
    relative, absolute = ModelPath(bundle, classifier), ModelPath(bundle.uncalibrated, classifier.uncalibrated)
    canonical, u, a = canonical_face(bundle.landmarks_union), bundle.landmarks_union, bundle.uncalibrated.landmarks_union
    faces = data.X.mean(axis=1).transpose(0, 2, 1)  # each window held still: [N, 468, 2]
    rests = {s: faces[(data.subject == s) & (data.segment == "neutral")].mean(0) for s in np.unique(data.subject)}

    def second_look(rest: np.ndarray, still: np.ndarray) -> bool:
        return smile_was_the_rest(relative.classify_still(rest[u] - still[u] + canonical),
                                  absolute.classify_still(rest[a]), absolute.classify_still(still[a]),
                                  classifier.thresholds, classifier.uncalibrated.thresholds)

    apex = np.flatnonzero(data.segment == "apex")
    happy = EMOTIONS.index("happiness")
    missed = [i for i in apex if data.y[i] == happy and absolute.classify_still(faces[i][a])[happy] < 0.5
              and relative.classify_still(faces[i][u] - rests[data.subject[i]][u] + canonical)[happy] >= 0.5]
    assert len(apex) >= 60 and missed
    assert all(second_look(faces[i], rests[data.subject[i]]) for i in missed)  # smiled first, then relaxed
    wrong = [EMOTIONS[data.y[i]] for i in apex if second_look(rests[data.subject[i]], faces[i])]
    assert not wrong, f"a rest taken for a smile against held {wrong}"


def test_a_face_gone_longer_than_the_face_gap_is_calibrated_afresh(run, london_dev):
    r = run()
    neutral = _photo(london_dev, PERSON, "neutral")
    r.feed(neutral, 45)
    first = set(r.processor.tracks)
    r.feed(np.full_like(neutral, 127), 20)  # 0.67 s without a face: longer than the 0.5 s face gap
    assert not r.processor.tracks
    count = len(r.payloads)
    r.feed(neutral, 45)
    assert set(r.processor.tracks).isdisjoint(first)
    after = [p["calibration"] for _, p in r.payloads[count:]]
    assert after[0]["age_s"] == 0.0 and r.rests() == 2  # a new track, a new rest


def test_calibration_off_serves_the_uncalibrated_models(run, london_dev, calibrated_bundle):
    off = run("off")
    plain = run(bundle=calibrated_bundle / "uncalibrated")
    frame = _photo(london_dev, PERSON, "smiling")
    off.feed(frame, 45)
    plain.feed(frame, 45)
    assert off.payloads and all(p["calibration"] == {"mode": "off", "calibrated": False, "frames": 0, "age_s": 0.0}
                                for _, p in off.payloads)
    assert all(p["calibration"]["mode"] == "absolute" for _, p in plain.payloads)
    assert [p["scores"] for _, p in off.payloads] == [p["scores"] for _, p in plain.payloads]
    assert off.rests() == 0


def test_rest_set_now_over_http(run, london_dev):
    r = run()
    smiling = _photo(london_dev, PERSON, "smiling")
    r.feed(smiling, 45)  # vetoed: no rest yet
    assert not any(p["calibration"]["calibrated"] for _, p in r.payloads)
    with serve_metrics(CollectorRegistry(), "127.0.0.1", 0,
                       actions={REST_PATH: functools.partial(_rest_request, {"cal": r.processor})}) as server:
        def post(query: str, method: str = "POST") -> tuple[int, str]:
            request = urllib.request.Request(f"{server.base_url}{REST_PATH}{query}", data=b"", method=method)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        assert post("?stream=nope")[0] == 404
        assert post("?face=x")[0] == 400
        assert post("", method="GET")[0] == 405
        status, text = post("?stream=cal")
        assert status == 202 and "cal" in text
    r.feed(smiling, 5)
    state = r.payloads[-1][1]["calibration"]
    assert state["calibrated"] and state["how"] == "set"  # asked for: taken even though it is a smile
    assert r.payloads[-1][1]["label"] == "neutral"  # the smile is this person's rest now, on request


def test_the_estimator_follows_slowly_and_only_from_neutral_frames():
    estimator = RestEstimator(2, RestSettings(bootstrap_s=0.5))
    face = np.array([[0.4, 0.5], [0.6, 0.5]], np.float32)
    for i in range(16):
        estimator.observe(face, i / FPS, scores=np.zeros(6))
    assert estimator.calibrated and np.allclose(estimator.rest, face)
    moved = face + 0.005
    for i in range(16, 16 + FPS):  # one second of a slightly moved face called neutral
        estimator.observe(moved, i / FPS, neutral=True)
    shift = float(estimator.rest[0, 0] - face[0, 0])
    assert 0.0001 < shift < 0.0003  # about 1/30 of the way (follow_s = 30 s)
    before = estimator.rest.copy()
    for i in range(16 + FPS, 16 + 2 * FPS):
        estimator.observe(moved, i / FPS, neutral=False)  # an expression: never pulls the rest
    assert np.array_equal(estimator.rest, before)
    frames = estimator.frames
    for i in range(16 + 2 * FPS, 16 + 3 * FPS):  # called neutral, but further than follow_rms from the rest
        estimator.observe(face + 0.02, i / FPS, neutral=True)
    assert np.array_equal(estimator.rest, before) and estimator.frames == frames


def test_the_calibrated_bundle_loads_and_bad_manifests_are_refused(calibrated_bundle, tmp_path):
    import shutil

    bundle = load_bundle(calibrated_bundle)
    assert bundle.calibrated and bundle.manifest["schema_version"] == 2
    assert not bundle.uncalibrated.calibrated and bundle.rest_settings == RestSettings()
    for edit, message in (
        (lambda m: m.__setitem__("representation", "delta"), "representation is 'delta'"),
        (lambda m: m.pop("rest_estimator"), "rest_estimator is missing"),
        (lambda m: m["rest_estimator"].__setitem__("follow_s", -1), r"rest_estimator.follow_s: expected a positive"),
        (lambda m: m["rest_estimator"]["veto"].pop("anger"), "veto: expected a score for each"),
        (lambda m: m.__setitem__("uncalibrated", "nowhere"), "no such model bundle folder"),
    ):
        folder = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        shutil.copytree(calibrated_bundle, folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        edit(manifest)
        write_manifest(folder, manifest)
        with pytest.raises(EdgeemoError, match=message):
            load_bundle(folder)


def test_the_calibration_map_is_checked():
    common = dict(stream="s", seq=0, t_capture=0.0, t_publish=0.0, face_found=True, scores=[0.1] * 6,
                  label="neutral", landmarks=3, k=dict.fromkeys(["anger", "disgust", "fear", "happiness", "sadness",
                                                                 "surprise"], 3),
                  bundle="b", latency=dict.fromkeys(["capture", "wait", "landmarks", "classify", "publish", "total"],
                                                    0.0))
    ok = build_prediction(**common, calibration={"mode": "auto", "calibrated": True, "frames": 31, "age_s": 2,
                                                 "how": "auto"})
    assert ok["calibration"]["age_s"] == 2.0
    for bad, message in (({"mode": "on", "calibrated": False, "frames": 0, "age_s": 0.0}, "calibration.mode"),
                         ({"mode": "auto", "calibrated": 1, "frames": 0, "age_s": 0.0}, "calibration.calibrated"),
                         ({"mode": "auto", "calibrated": True, "frames": 3, "age_s": 0.0}, "calibration.how")):
        with pytest.raises(EdgeemoError, match=message):
            build_prediction(**common, calibration=bad)


def test_explanations_are_against_the_persons_own_rest_once_calibrated(calibrated_bundle, london_dev):
    from edgeemo.attribution import CANONICAL_BASELINE, PERSONAL_BASELINE
    from edgeemo.serve import ServeOptions, explanation_factory

    bundle = load_bundle(calibrated_bundle)
    classifier = make_classifier(bundle)
    smiling, neutral = _photo(london_dev, PERSON, "smiling"), _photo(london_dev, PERSON, "neutral")
    with PredictionPublisher("tcp://127.0.0.1:*") as publisher, FaceMeshLandmarker(static=False) as landmarker:
        processor = StreamProcessor("x", bundle, classifier, landmarker, publisher,
                                    Metrics(CollectorRegistry()).stream("x"),
                                    explain=explanation_factory(ServeOptions(explain=True, explain_every=10),
                                                                classifier))
        processor.frame_interval_s = 1 / FPS
        explained = []
        for i, frame in enumerate([smiling] * 45 + [neutral] * 60 + [smiling] * 45):
            for payload in processor.process(frame, i / FPS, 0.0):
                if "explanation" in payload:
                    explained.append((payload["calibration"]["calibrated"], payload["explanation"]))
    before = [e for calibrated, e in explained if not calibrated]
    after = [e for calibrated, e in explained if calibrated]
    assert before and all(e["baseline"] == CANONICAL_BASELINE for e in before)  # the uncalibrated models'
    assert after and all(e["baseline"] == PERSONAL_BASELINE for e in after)
    smile = [e for e in after if e["emotion"] == "happiness"]
    assert smile, "the smile after the rest is explained"
    top = max(smile[-1]["regions"], key=lambda name: abs(smile[-1]["regions"][name]))
    assert top in ("mouth_corners", "inner_cheeks", "outer_cheeks", "lower_lip", "upper_lip")


def test_the_median_face_is_numpys_median_and_its_spread_the_median_frames_rms():
    rng = np.random.default_rng(0)
    for frames in (1, 2, 16, 30, 31, 61, 128):  # a second at 15 to 120 fps, and the whole history
        faces = rng.normal(scale=0.01, size=(frames, 468, 2)).astype(np.float32)
        median, spread = _median_and_spread(faces)
        assert np.array_equal(median, np.median(faces, axis=0)) and np.array_equal(median_face(faces), median)
        rms = np.sqrt(((faces - median) ** 2).sum(axis=(1, 2)) / 468)
        assert spread == pytest.approx(float(np.median(rms)), rel=1e-6)
    for frames in range(1, 129):  # every count the history holds: the sorting network sorts each
        faces = rng.normal(size=(frames, 8, 2)).astype(np.float32)
        assert np.array_equal(median_face(faces), np.median(faces, axis=0)), frames
