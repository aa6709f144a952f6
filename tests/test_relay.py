"""Many cameras: two ``edgeemo serve --connect`` processes publish through one ``edgeemo relay`` to one
subscriber, all real processes and sockets, on two clips of real faces."""

import signal
from collections import defaultdict

import pytest

from edgeemo.emotions import EMOTIONS
from edgeemo.subscriber import Subscriber
from offline.data.morph import load_face, smile_clip
from tests.onnx_bundles import make_linear_bundle
from tests.serve_helpers import edgeemo_process, kill, messages_until_shutdown, relaying, write_clip

FRAMES, STRIDE = 16, 2
SPAN = (FRAMES - 1) * STRIDE + 1  # frames before the first prediction


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    make_linear_bundle(folder, {e: [33, 61, 133, 291, 362, 263] for e in EMOTIONS}, frames=FRAMES)
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory, london_dev):
    """Two faces (London dev 002 and 004), each going from neutral to a held smile: {stream: (clip, frames)}."""
    folder = tmp_path_factory.mktemp("clips")
    result = {}
    for stream, face in (("door", "002"), ("desk", "004")):
        neutral, pn = load_face(london_dev, face, "neutral")
        smiling, ps = load_face(london_dev, face, "smiling")
        frames = smile_clip(neutral, pn, smiling, ps, hold_neutral=10, onset=10, hold_smile=20 + int(face) % 7)
        result[stream] = write_clip(folder / f"{face}.mp4", frames), len(frames)
    return result


def test_a_relay_carries_every_prediction_of_two_serve_processes_to_a_subscriber(bundle, clips):
    # Relay first, subscriber second, cameras last: nothing is published before someone listens.
    with relaying() as (relay, publishers, subscribers), Subscriber(subscribers) as sub:
        servers = [
            edgeemo_process("serve", "--connect", publishers, "--camera", str(clip), "--stream", stream, "--fast",
                            "--model", str(bundle), "--metrics-port", "0")
            for stream, (clip, _) in clips.items()
        ]
        try:
            got = messages_until_shutdown(sub, *servers, streams=len(servers))
            assert [server.wait(30) for server in servers] == [0, 0]
        finally:
            for server in servers:
                kill(server)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(10) == 0
    seqs, events = defaultdict(list), defaultdict(list)
    for message in got:
        if message["kind"] == "prediction":
            seqs[message["stream"]].append(message["seq"])
        else:
            events[message["stream"]].append(message["event"])
    for stream, (_, n_frames) in clips.items():
        assert seqs[stream] == list(range(n_frames - SPAN + 1)), f"{stream}: predictions missing or out of order"
        # serve --connect also says when it reached the relay (edgeemo.peers), once, after it started.
        assert [e for e in events[stream] if e != "relay_connected"] == [
            "started", "face_found", "end_of_stream", "shutting_down"]
        assert events[stream].count("relay_connected") == 1 and events[stream][0] == "started"


def test_relay_stops_cleanly_on_sigint_and_names_a_port_in_use():
    with relaying() as (relay, publishers, subscribers):
        clash = edgeemo_process("relay", "--publishers", "tcp://127.0.0.1:*", "--subscribers", subscribers)
        assert clash.wait(30) == 2
        error = clash.stderr.read().strip()
        assert error.startswith(f"edgeemo: error: --subscribers {subscribers}: Address already in use")
        assert "\n" not in error
        relay.send_signal(signal.SIGINT)
        assert relay.wait(10) == 0
