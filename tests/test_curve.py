"""CURVE: keys made by ``edgeemo keys``, encrypted streams that only key holders receive, and the refusal
to publish beyond loopback without keys. Real processes and sockets on 127.0.0.1 with CURVE forced on."""

import json
import stat
import subprocess
import sys
import time

import pytest
import zmq.auth

from edgeemo.cli import main
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.keys import leaves_machine, load_client_keys, load_server_keys
from edgeemo.publisher import PredictionPublisher
from edgeemo.subscriber import Subscriber
from tests.onnx_bundles import make_linear_bundle
from tests.serve_helpers import edgeemo_process, kill, messages_until_shutdown, relaying, serving

KEY_FILES = ("server.key", "server.key_secret", "client.key", "client.key_secret")
QUIET_S = 1.0  # how long a subscriber without the key listens, after the stream it should not get


@pytest.fixture(scope="module")
def keys(curve_keys):
    return curve_keys


@pytest.fixture(scope="module")
def stranger_keys(tmp_path_factory):
    """Keys of another installation: its client key is not among those the server lets in."""
    folder = tmp_path_factory.mktemp("stranger")
    main(["keys", "--out", str(folder)])
    return folder


def test_keys_are_zeromq_certificates_with_private_secrets_and_never_overwritten(keys, capsys):
    assert sorted(p.name for p in keys.iterdir()) == sorted(KEY_FILES)
    for name in KEY_FILES:
        mode = stat.S_IMODE((keys / name).stat().st_mode)
        assert mode == (0o600 if name.endswith("_secret") else 0o644), f"{name}: mode {oct(mode)}"
        public, secret = zmq.auth.load_certificate(keys / name)
        assert len(public) == 40 and (secret is not None) == name.endswith("_secret")
    before = {name: (keys / name).read_bytes() for name in KEY_FILES}
    capsys.readouterr()
    assert main(["keys", "--out", str(keys)]) == 2
    assert capsys.readouterr().err == (
        f"edgeemo: error: --out {keys}: server.key already exists (keep it, or choose another folder)\n"
    )
    assert {name: (keys / name).read_bytes() for name in KEY_FILES} == before


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    make_linear_bundle(folder, {e: [33, 61, 133, 291] for e in EMOTIONS}, frames=4)
    return folder


DEMO_PREDICTIONS = 150 - 7 + 1  # the demo clip's 150 frames, a window of 4 frames at stride 2


def test_serve_with_keys_reaches_only_subscribers_holding_an_allowed_key(keys, stranger_keys, bundle):
    stranger_curve = load_client_keys(stranger_keys, keys / "server.key")  # trusts our server, holds its own key
    with serving("--camera", "demo", "--fast", "--model", str(bundle), curve_keys=keys) as (process, sub, endpoint):
        with Subscriber(endpoint) as plain, Subscriber(endpoint, curve=stranger_curve) as stranger:
            got = messages_until_shutdown(sub, process)
            assert process.wait(30) == 0
            assert plain.receive(QUIET_S) is None
            assert stranger.receive(QUIET_S) is None
    assert [m["seq"] for m in got if m["kind"] == "prediction"] == list(range(DEMO_PREDICTIONS))
    assert [m["event"] for m in got if m["kind"] == "status"][-1] == "shutting_down"


def test_a_relay_with_keys_carries_serve_encrypted_and_lets_in_no_stranger(keys, stranger_keys, bundle):
    client = load_client_keys(keys)
    with relaying("--curve-keys", str(keys)) as (relay, publishers, subscribers), \
            Subscriber(subscribers, curve=client) as sub, Subscriber(subscribers) as plain:
        serve = edgeemo_process("serve", "--connect", publishers, "--curve-keys", str(keys), "--camera", "demo",
                                "--fast", "--model", str(bundle), "--metrics-port", "0")
        try:
            got = messages_until_shutdown(sub, serve)
            assert serve.wait(30) == 0
        finally:
            kill(serve)
        assert plain.receive(QUIET_S) is None
        # A camera with a key the relay does not know cannot inject predictions.
        with PredictionPublisher(publishers, connect=True,
                                 curve=load_client_keys(stranger_keys, keys / "server.key")) as intruder:
            deadline = time.monotonic() + QUIET_S
            while time.monotonic() < deadline:
                intruder.publish_status("cam0", "started", "intruder")
                assert sub.receive(0.05) is None
    assert [m["seq"] for m in got if m["kind"] == "prediction"] == list(range(DEMO_PREDICTIONS))


def test_subscribe_command_decrypts_with_its_keys(keys):
    with PredictionPublisher("tcp://127.0.0.1:*", curve=load_server_keys(keys)) as pub:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgeemo", "subscribe", pub.endpoint, "--curve-keys", str(keys), "--json",
             "--count", "3", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            for _ in range(3000):  # keep publishing until it has connected, printed 3 lines and exited
                if proc.poll() is not None:
                    break
                pub.publish_status("cam0", "started", "secret")
                time.sleep(0.01)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert [json.loads(line)["detail"] for line in out.splitlines()] == ["secret"] * 3


@pytest.mark.parametrize("argv, flag", [
    (["serve", "--bind", "tcp://0.0.0.0:5599"], "--bind tcp://0.0.0.0:5599"),
    (["serve", "--bind", "tcp://*:5599"], "--bind tcp://*:5599"),
    (["serve", "--connect", "tcp://192.0.2.7:5555"], "--connect tcp://192.0.2.7:5555"),
    (["relay", "--subscribers", "tcp://0.0.0.0:5599"], "--subscribers tcp://0.0.0.0:5599"),
    (["relay", "--publishers", "tcp://eth0:5599"], "--publishers tcp://eth0:5599"),
    (["subscribe", "tcp://192.0.2.7:5556"], "endpoint tcp://192.0.2.7:5556"),
], ids=["serve-any", "serve-star", "serve-connect", "relay-subscribers", "relay-publishers", "subscribe"])
def test_beyond_loopback_without_keys_is_refused_in_one_line(argv, flag, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"edgeemo: error: {flag}: not a loopback address, so CURVE encryption is required: pass --curve-keys DIR "
        "(make one with: edgeemo keys --out DIR)\n"
    )


@pytest.mark.parametrize("endpoint, beyond", [
    ("tcp://127.0.0.1:5556", False), ("tcp://127.0.0.1:*", False), ("tcp://localhost:5556", False),
    ("tcp://[::1]:5556", False), ("ipc:///tmp/edgeemo", False), ("inproc://edgeemo", False),
    ("tcp://0.0.0.0:5556", True), ("tcp://*:5556", True), ("tcp://[::]:5556", True), ("tcp://10.0.0.5:5556", True),
    ("tcp://camera-host:5556", True), ("tcp://127.0.0.1;10.0.0.5:5556", True),
])
def test_what_counts_as_leaving_the_machine(endpoint, beyond):
    assert leaves_machine(endpoint) is beyond


def test_missing_or_exposed_secret_is_refused_naming_the_file(keys, tmp_path):
    with pytest.raises(EdgeemoError, match=f"--curve-keys {tmp_path}: no server.key_secret"):
        load_server_keys(tmp_path)
    exposed = tmp_path / "exposed"
    exposed.mkdir()
    for name in KEY_FILES:
        (exposed / name).write_bytes((keys / name).read_bytes())
    (exposed / "client.key_secret").chmod(0o644)
    with pytest.raises(EdgeemoError, match=f"{exposed / 'client.key_secret'}: readable by every user; chmod 600"):
        load_client_keys(exposed)
