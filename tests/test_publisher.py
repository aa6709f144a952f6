"""Publisher and subscriber over real ZeroMQ sockets on loopback, and ``edgeemo subscribe``.

Publishers bind tcp://127.0.0.1:* and tell subscribers their LAST_ENDPOINT, so tests never clash on a
port. ZeroMQ drops what a PUB sends before a SUB's connection completes, so each test first publishes
status messages until every subscriber has one ("handshake"). No assertion depends on timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import zmq

from edgeemo.cli import main
from edgeemo.commands.subscribe import format_message
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.publisher import PredictionPublisher
from edgeemo.subscriber import Subscriber

ANY_PORT = "tcp://127.0.0.1:*"
K_USED = {e: 12 for e in EMOTIONS}


def publish(pub: PredictionPublisher, stream: str = "cam0", **changes) -> dict:
    args = dict(
        captured_at=time.monotonic() - 0.01, face_found=True, scores=[0.1, 0.05, 0.02, 0.91, 0.03, 0.4],
        label="happiness", landmarks=58, k=K_USED, bundle="test-bundle",
        latency={"capture": 0.005, "wait": 0.001, "landmarks": 0.003, "classify": 0.0005},
    )
    args.update(changes)
    return pub.publish_prediction(stream, **args)


def handshake(pub: PredictionPublisher, *subs: Subscriber, stream: str = "cam0") -> None:
    """Publish status until each subscriber has received one, then drop what is left of them."""
    for sub in subs:
        for _ in range(400):
            pub.publish_status(stream, "started", "handshake")
            if sub.receive(0.025) is not None:
                break
        else:
            pytest.fail(f"subscriber never connected to {pub.endpoint}")
    for sub in subs:
        while sub.receive(0.1) is not None:
            pass


def predictions(sub: Subscriber, count: int) -> list[dict]:
    got = []
    while len(got) < count:
        item = sub.receive(10)
        assert item is not None, f"only {len(got)} of {count} predictions arrived"
        if item[1]["kind"] == "prediction":
            got.append(item[1])
    return got


def test_subscriber_gets_every_prediction_in_order_without_gaps():
    with PredictionPublisher(ANY_PORT) as pub, Subscriber(pub.endpoint, timeout_s=10) as sub:
        assert pub.endpoint.startswith("tcp://127.0.0.1:")
        handshake(pub, sub)
        sent = [publish(pub, scores=[i / 100] * 6) for i in range(60)]
        got = predictions(sub, 60)
    assert [m["seq"] for m in got] == list(range(60))
    assert got == sent
    assert sub.dropped == 0
    m = got[0]
    assert m["latency"]["total"] >= 0.01  # captured 10 ms before publishing
    assert m["t_publish"] - m["t_capture"] == pytest.approx(m["latency"]["total"], abs=1e-6)  # float64 epoch resolution
    parts = sum(m["latency"][s] for s in ("wait", "landmarks", "classify", "publish"))
    assert parts == pytest.approx(m["latency"]["total"])


def test_status_has_its_own_sequence_and_streams_are_filtered_exactly():
    with PredictionPublisher(ANY_PORT) as pub, Subscriber(pub.endpoint, streams=["cam"], timeout_s=10) as sub:
        handshake(pub, sub, stream="cam")
        publish(pub, "cam2")  # "edgeemo.pred.cam" is a prefix of this topic: the subscriber must drop it
        publish(pub, "cam")
        pub.publish_status("cam", "camera_lost", "camera 0: no frame")
        topic, first = sub.receive(10)
        _, second = sub.receive(10)
    assert topic == "edgeemo.pred.cam" and first["stream"] == "cam" and first["seq"] == 0
    assert second["kind"] == "status" and second["event"] == "camera_lost" and second["detail"] == "camera 0: no frame"


def test_a_message_that_fails_to_build_sends_nothing_and_uses_no_seq():
    with PredictionPublisher(ANY_PORT) as pub, Subscriber(pub.endpoint, timeout_s=10) as sub:
        handshake(pub, sub)
        sent_before = pub.sent
        with pytest.raises(EdgeemoError, match="'label'"):
            publish(pub, label="bogus")
        with pytest.raises(EdgeemoError, match="'latency.classify'"):
            publish(pub, latency={"capture": 0.0, "wait": 0.0, "landmarks": 0.0})
        with pytest.raises(EdgeemoError, match="'event'"):
            pub.publish_status("cam0", "exploded")
        assert pub.sent == sent_before
        publish(pub)
        # The subscriber checks for exactly two frames: a stray topic frame would fail here.
        (message,) = predictions(sub, 1)
    assert message["seq"] == 0


def test_slow_subscriber_does_not_hold_back_the_publisher_or_a_fast_subscriber():
    total = 3000
    # Small kernel buffers for this test's sockets, so the never-reading subscriber overflows soon.
    small = zmq.Context()
    small.setsockopt(zmq.SNDBUF, 16384)
    small.setsockopt(zmq.RCVBUF, 4096)
    try:
        with PredictionPublisher(ANY_PORT, sndhwm=100, context=small) as pub, \
                Subscriber(pub.endpoint, timeout_s=10) as fast, \
                Subscriber(pub.endpoint, timeout_s=10, rcvhwm=1, context=small) as slow:
            handshake(pub, fast, slow)
            fast_got = []
            for _ in range(total // 50):
                for _ in range(50):  # a burst below SNDHWM, which the fast subscriber reads before the next
                    publish(pub)
                fast_got += predictions(fast, 50)
            assert pub.sent >= total  # the publisher finished: nothing waited on the slow subscriber

            # The slow one now reads what ZeroMQ kept for it; later messages reach it again and reveal the gap.
            slow_got = []
            for extra in range(1, 401):
                publish(pub)
                while (item := slow.receive(0.025)) is not None:
                    if item[1]["kind"] == "prediction":
                        slow_got.append(item[1]["seq"])
                if slow.dropped:
                    break
            fast_got += predictions(fast, extra)
    finally:
        small.term()
    assert [m["seq"] for m in fast_got] == list(range(len(fast_got)))
    assert len(fast_got) >= total and fast.dropped == 0
    assert slow_got == sorted(slow_got) and len(slow_got) < total
    assert slow.dropped > 0
    assert len(slow_got) + slow.dropped == slow_got[-1] + 1  # every message was received or counted missing


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:notaport", "bogus://x", "tcp://"])
def test_bad_bind_endpoint_names_the_flag(endpoint):
    with pytest.raises(EdgeemoError, match=f"--bind {endpoint}"):
        PredictionPublisher(endpoint)


def test_port_in_use_names_the_flag_and_close_frees_it():
    with PredictionPublisher(ANY_PORT) as first:
        with pytest.raises(EdgeemoError, match=f"--bind {first.endpoint}"):
            PredictionPublisher(first.endpoint)
    with PredictionPublisher(first.endpoint) as again:  # released by close()
        assert again.endpoint == first.endpoint


def test_send_high_water_mark_must_be_bounded():
    with pytest.raises(EdgeemoError, match="--sndhwm"):
        PredictionPublisher(ANY_PORT, sndhwm=0)


def test_subscribe_command_prints_json_lines():
    with PredictionPublisher(ANY_PORT) as pub:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgeemo", "subscribe", pub.endpoint, "--json", "--count", "5", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            for _ in range(3000):  # keep publishing until it has connected, printed 5 lines and exited
                if proc.poll() is not None:
                    break
                publish(pub)
                time.sleep(0.01)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5
    assert all(m["kind"] == "prediction" and m["stream"] == "cam0" and m["label"] == "happiness" for m in lines)
    seqs = [m["seq"] for m in lines]
    assert seqs == list(range(seqs[0], seqs[0] + 5))


def test_subscribe_command_times_out_naming_the_flag(capsys):
    with PredictionPublisher(ANY_PORT) as pub:
        assert main(["subscribe", pub.endpoint, "--timeout", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "--timeout 0.2" in err and err.count("\n") == 1


def test_human_readable_lines():
    with PredictionPublisher(ANY_PORT) as pub:
        pred = publish(pub)
        nothing = publish(pub, face_found=False, label="none", scores=[0.0] * 6)
        status = pub.publish_status("cam0", "camera_lost", "camera 0: no frame")
    line = format_message(pred)
    assert " cam0 #0 happiness " in line and "happiness 0.91  surprise 0.40  anger 0.10" in line
    assert line.endswith(" ms")
    assert " cam0 #1 no face " in format_message(nothing)
    assert format_message(status).endswith(" cam0 #0 status camera_lost: camera 0: no frame")


def test_streams_publishing_from_their_own_threads_lose_and_garble_nothing():
    # serve publishes each stream from its own thread through one publisher: every message arrives whole,
    # each stream's seq counts up without a gap, and statuses keep their own sequence.
    import threading

    streams, count = [f"s{i}" for i in range(6)], 300
    with PredictionPublisher(ANY_PORT, sndhwm=10_000) as pub, Subscriber(pub.endpoint, timeout_s=10) as sub:
        handshake(pub, sub, stream="s0")
        start = threading.Barrier(len(streams))

        def run(stream: str) -> None:
            start.wait()
            for i in range(count):
                publish(pub, stream=stream, scores=[i / count] * 6)
                if i % 50 == 0:
                    pub.publish_status(stream, "face_found", f"face {i}")

        threads = [threading.Thread(target=run, args=(s,)) for s in streams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        got = []
        while (item := sub.receive(2.0)) is not None:
            got.append(item[1])
    for stream in streams:
        mine = [m for m in got if m["stream"] == stream and m["kind"] == "prediction"]
        assert [m["seq"] for m in mine] == list(range(count))
        assert [m["scores"]["anger"] for m in mine] == pytest.approx([i / count for i in range(count)])
        status = [m["seq"] for m in got if m["stream"] == stream and m["kind"] == "status"]
        assert status == list(range(status[0], status[0] + count // 50))
    assert sub.dropped == 0
