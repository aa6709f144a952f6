"""The prediction message contract: build, pack, unpack, and one-line errors naming the field."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.messages import (
    LATENCY_KEYS,
    SCHEMA_VERSION,
    build_prediction,
    build_status,
    pack,
    prediction_topic,
    status_topic,
    unpack,
)

TOPIC = b"edgeemo.pred.cam0"
LATENCY = {"capture": 0.02, "wait": 0.001, "landmarks": 0.003, "classify": 0.0004, "publish": 0.0001, "total": 0.0045}


def prediction(**changes):
    fields = dict(
        stream="cam0", seq=7, t_capture=1700000000.25, t_publish=1700000000.2545, face_found=True,
        scores=np.array([0.1, 0.05, 0.02, 0.91, 0.03, 0.4], dtype=np.float32), label="happiness",
        landmarks=58, k={e: 10 + i for i, e in enumerate(EMOTIONS)}, bundle="bundle-2024", latency=LATENCY,
    )
    fields.update(changes)
    return build_prediction(**fields)


def raw(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def plain_types_only(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_types_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain_types_only(v) for v in value)
    return type(value) in (str, int, float, bool)


def test_prediction_round_trip_with_plain_types_in_emotion_order():
    message = prediction()
    decoded = unpack(TOPIC, pack(message))
    assert decoded == message
    assert decoded["schema"] == SCHEMA_VERSION and decoded["kind"] == "prediction"
    assert list(decoded["scores"]) == list(EMOTIONS)
    assert list(decoded["latency"]) == list(LATENCY_KEYS)
    assert decoded["scores"]["happiness"] == pytest.approx(0.91)
    # What another language's reader gets: nothing but str, int, float, bool and maps.
    assert plain_types_only(msgpack.unpackb(pack(message), raw=False))


def test_scores_as_a_map_and_status_round_trip():
    scores = {e: 0.0 for e in reversed(EMOTIONS)}
    message = prediction(scores=scores, label="none", face_found=False)
    assert list(unpack(TOPIC, pack(message))["scores"]) == list(EMOTIONS)
    status = build_status(stream="cam0", seq=0, t_publish=1.7e9, event="camera_lost", detail="camera 0: no frame")
    assert unpack(b"edgeemo.status.cam0", pack(status)) == status


def test_topics_and_stream_ids():
    assert prediction_topic("cam-0_a") == "edgeemo.pred.cam-0_a"
    assert status_topic("x") == "edgeemo.status.x"
    for bad in ("", "cam.0", "cam 0", "x" * 65, "kamera-ü"):
        with pytest.raises(EdgeemoError, match="--stream"):
            prediction_topic(bad)


def test_reader_accepts_ints_for_floats_and_ignores_unknown_keys():
    message = prediction()
    message["t_publish"] = 1700000001  # some encoders write a whole float as an int
    message["latency"] = {**LATENCY, "total": 0, "gpu": 0.5}
    message["added_later"] = [1, 2]
    decoded = unpack(TOPIC, raw(message))
    assert decoded["t_publish"] == 1700000001.0 and isinstance(decoded["t_publish"], float)
    assert decoded["latency"]["total"] == 0.0 and "gpu" not in decoded["latency"]
    assert decoded["added_later"] == [1, 2]


def _without(message: dict, key: str) -> dict:
    return {k: v for k, v in message.items() if k != key}


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda m: _without(m, "seq"), "'seq'"),
        (lambda m: {**m, "seq": "7"}, "'seq'"),
        (lambda m: {**m, "seq": True}, "'seq'"),
        (lambda m: {**m, "seq": -1}, "'seq'"),
        (lambda m: {**m, "face_found": 1}, "'face_found'"),
        (lambda m: {**m, "t_capture": "now"}, "'t_capture'"),
        (lambda m: {**m, "scores": [0.1] * 6}, "'scores'"),
        (lambda m: {**m, "scores": _without(m["scores"], "fear")}, "'scores.fear'"),
        (lambda m: {**m, "scores": {**m["scores"], "anger": "high"}}, "'scores.anger'"),
        (lambda m: {**m, "scores": {**m["scores"], "anger": float("nan")}}, "'scores.anger'"),
        (lambda m: {**m, "k": {**m["k"], "sadness": 2.5}}, "'k.sadness'"),
        (lambda m: {**m, "latency": _without(m["latency"], "total")}, "'latency.total'"),
        (lambda m: {**m, "label": "contempt"}, "'label'"),
        (lambda m: {**m, "stream": "cam1"}, "'stream'"),
        (lambda m: {**m, "kind": "status"}, "'kind'"),
        (lambda m: {**m, "schema": 2}, "'schema'"),
        (lambda m: _without(m, "bundle"), "'bundle'"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_prediction_names_the_field(change, field):
    with pytest.raises(EdgeemoError) as info:
        unpack(TOPIC, raw(change(prediction())))
    assert field in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "topic,payload,says",
    [
        (TOPIC, b"\xc1", "not one msgpack map"),
        (TOPIC, raw(prediction()) + b"\x00", "not one msgpack map"),
        (TOPIC, raw([1, 2]), "not a map"),
        (TOPIC, raw({1: 2}), "not one msgpack map"),
        (b"other.topic", raw(prediction()), "not an edgeemo topic"),
        (b"edgeemo.pred.", raw(prediction()), "topic stream"),
        (b"edgeemo.status.cam0", raw({**build_status(stream="cam0", seq=1, t_publish=1.0, event="started"),
                                      "event": ""}), "'event'"),
    ],
    ids=["invalid byte", "trailing bytes", "array", "int key", "foreign topic", "empty stream", "empty event"],
)
def test_malformed_payloads_and_topics(topic, payload, says):
    with pytest.raises(EdgeemoError, match=says) as info:
        unpack(topic, payload)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "changes,field",
    [
        (dict(scores=[0.1] * 5), "'scores'"),
        (dict(scores={"anger": 0.5}), "'scores."),
        (dict(label="sad"), "'label'"),
        (dict(k={"anger": 3}), "'k."),
        (dict(latency={"total": 0.1}), "'latency."),
        (dict(scores=np.array([0.1, 0.2, np.inf, 0.1, 0.1, 0.1])), "'scores.fear'"),
    ],
)
def test_build_refuses_what_a_reader_would_refuse(changes, field):
    with pytest.raises(EdgeemoError, match=field):
        prediction(**changes)


def test_a_reader_accepts_an_event_a_newer_publisher_added():
    # Events are added without a schema bump (the relay_ ones were): readers must let them through.
    payload = raw({**build_status(stream="cam0", seq=1, t_publish=1.0, event="started"), "event": "from_the_future"})
    assert unpack(b"edgeemo.status.cam0", payload)["event"] == "from_the_future"


def test_build_status_refuses_unknown_event():
    with pytest.raises(EdgeemoError, match="'event'"):
        build_status(stream="cam0", seq=0, t_publish=0.0, event="exploded")
