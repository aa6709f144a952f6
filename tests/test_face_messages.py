"""Messages of several faces per stream: the new keys in the contract, and following one face with
``Subscriber(faces=...)`` and ``edgeemo subscribe --face`` over real ZeroMQ sockets."""

from __future__ import annotations

import subprocess
import sys
import time

import msgpack
import pytest

from edgeemo.cli import main
from edgeemo.commands.subscribe import format_message
from edgeemo.errors import EdgeemoError
from edgeemo.messages import SCHEMA_VERSION, pack, unpack
from edgeemo.publisher import PredictionPublisher
from edgeemo.subscriber import Subscriber
from tests.test_publisher import ANY_PORT, handshake, publish

POSE = {"yaw": 12.5, "pitch": -3.0, "roll": 1.25}


def face_prediction(pub, face, **changes):
    fields = dict(face=face, box=[0.1, 0.2, 0.4, 0.8], pose=POSE, pose_beyond_training=False)
    return publish(pub, **{**fields, **changes})


def test_face_box_and_pose_travel_and_are_checked():
    with PredictionPublisher(ANY_PORT) as pub:
        message = face_prediction(pub, 3)
        status = pub.publish_status("cam0", "no_face", "face 3 gone", face=3)
    assert message["schema"] == SCHEMA_VERSION == 1  # added keys: schema 1 still (see edgeemo.messages)
    got = unpack(b"edgeemo.pred.cam0", pack(message))
    assert got["face"] == 3 and got["box"] == {"x0": 0.1, "y0": 0.2, "x1": 0.4, "y1": 0.8} and got["pose"] == POSE
    assert got["pose_beyond_training"] is False
    assert unpack(b"edgeemo.status.cam0", pack(status))["face"] == 3
    for key, bad, error in (("face", -1, "'face': -1 is negative"), ("face", "1", "'face': expected an integer"),
                            ("box", {"x0": 0.1}, "'box.y0': missing"), ("pose", {**POSE, "yaw": "left"}, "'pose.yaw'"),
                            ("pose_beyond_training", 1, "'pose_beyond_training': expected a boolean")):
        with pytest.raises(EdgeemoError, match=error):
            unpack(b"edgeemo.pred.cam0", msgpack.packb({**message, key: bad}, use_bin_type=True))


def test_a_message_without_the_face_keys_still_reads():
    with PredictionPublisher(ANY_PORT) as pub:
        old = publish(pub)
    assert "face" not in old and "face" not in unpack(b"edgeemo.pred.cam0", pack(old))


def test_a_subscriber_follows_one_face_and_keeps_the_streams_own_status():
    with PredictionPublisher(ANY_PORT) as pub, Subscriber(pub.endpoint, faces=[1], timeout_s=10) as sub:
        handshake(pub, sub)
        for i in range(10):
            face_prediction(pub, i % 2)
        pub.publish_status("cam0", "face_found", "face 2", face=2)
        pub.publish_status("cam0", "no_face", "face 1 gone", face=1)
        pub.publish_status("cam0", "shutting_down", "source ended")
        got = [sub.receive(10)[1] for _ in range(7)]
    assert [m["face"] for m in got[:5]] == [1] * 5 and [m["seq"] for m in got[:5]] == [1, 3, 5, 7, 9]
    assert [(m["event"], m.get("face")) for m in got[5:]] == [("no_face", 1), ("shutting_down", None)]
    assert sub.dropped == 0  # the other face's messages are no gap


def test_subscribe_face_prints_only_that_face_with_its_pose():
    with PredictionPublisher(ANY_PORT) as pub:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgeemo", "subscribe", pub.endpoint, "--face", "1", "--count", "3",
             "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for i in range(6000):
                if proc.poll() is not None:
                    break
                face_prediction(pub, i % 2)
                time.sleep(0.005)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(" face 1 happiness " in line for line in lines), lines
    assert all("yaw +12 pitch -3 roll +1" in line for line in lines)


def test_human_readable_lines_name_the_face_and_a_pose_beyond_training():
    with PredictionPublisher(ANY_PORT) as pub:
        turned = face_prediction(pub, 0, pose_beyond_training=True)
        gone = pub.publish_status("cam0", "no_face", "face 0 gone longer than 0.5 s; 1 face in view", face=0)
    assert " cam0 #0 face 0 happiness " in format_message(turned)
    assert "(turned beyond training)" in format_message(turned)
    assert format_message(gone).endswith(
        " cam0 #0 face 0 status no_face: face 0 gone longer than 0.5 s; 1 face in view")


def test_face_must_be_an_id(capsys):
    with pytest.raises(SystemExit):
        main(["subscribe", "--face", "me"])
    assert "--face: expected a face id" in capsys.readouterr().err
