"""Publish predictions and status on a ZeroMQ PUB socket, as the contract in ``edgeemo.messages`` says."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
import zmq

from edgeemo.errors import EdgeemoError
from edgeemo.keys import Authenticator, ClientKeys, ServerKeys, make_client, make_server, require_keys
from edgeemo.messages import DEFAULT_ENDPOINT, build_prediction, build_status, prediction_topic, status_topic
from edgeemo.peers import PeerMonitor

DEFAULT_SNDHWM = 100  # about 3 s of predictions at 30 frames/s per subscriber; older ones are not worth keeping
DEFAULT_LINGER_S = 0.5


class PredictionPublisher:
    """A ZeroMQ PUB socket sending ``[topic, msgpack payload]`` messages.

    Capture never waits on the network: a PUB socket does not block on subscribers (and sends use
    NOBLOCK to make sure of it). Each subscriber gets a queue of at most ``sndhwm`` messages here, plus its
    own receive queue; a subscriber that falls further behind loses messages, it alone, inside ZeroMQ,
    which does not tell the publisher. The subscriber sees the loss as a gap in ``seq``
    (``edgeemo.subscriber.Subscriber.dropped`` counts them).

    Sequence numbers count per stream and kind from 0 and advance only when a message was handed to
    ZeroMQ, so a message that failed to build leaves no gap and no stray frame.

    The socket binds ``endpoint`` (subscribers connect to it), or with ``connect`` connects to it: to a
    relay's publisher side (``edgeemo.relay``), which many publishers share. ``curve`` encrypts: server keys
    when binding, client keys (trusting the relay's server key) when connecting; an endpoint off loopback
    is refused without them (``edgeemo.keys``). Connecting, ``peer_monitor`` (``edgeemo.peers``) tells
    whether the relay is reached; binding, it is None.

    Thread-safe for publishing: the streams of one ``serve`` process publish from their own threads. A lock
    lets one message at a time build and go into the socket (a ZeroMQ socket must never be used by two threads
    at once; the lock is also the full memory barrier ZeroMQ asks for when a socket changes threads). Closing,
    and the peer monitor, belong to the thread that made it.
    """

    def __init__(
        self, endpoint: str = DEFAULT_ENDPOINT, *, connect: bool = False, curve: ServerKeys | ClientKeys | None = None,
        sndhwm: int = DEFAULT_SNDHWM, linger_s: float = DEFAULT_LINGER_S, context: zmq.Context | None = None,
    ) -> None:
        flag = "--connect" if connect else "--bind"
        if isinstance(sndhwm, bool) or not isinstance(sndhwm, int) or sndhwm < 1:
            # 0 would mean "no limit": a stalled subscriber could then grow our memory without bound.
            raise EdgeemoError(f"--sndhwm {sndhwm!r}: expected a positive integer")
        if curve is not None and isinstance(curve, ClientKeys) != connect:
            needed = "ClientKeys" if connect else "ServerKeys"
            raise TypeError(f"curve: {flag} needs {needed}, got {type(curve).__name__}")
        require_keys(endpoint, curve, flag)
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        self._linger_ms = max(0, int(linger_s * 1000))
        self._auth = Authenticator(self._context, curve) if isinstance(curve, ServerKeys) else None
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.LINGER, self._linger_ms)
        if isinstance(curve, ServerKeys):
            make_server(self._socket, curve)
        elif curve is not None:
            make_client(self._socket, curve)
        # Connecting, nothing fails when the relay is down or refuses our keys: watch the connection.
        self.peer_monitor = PeerMonitor(self._socket, endpoint, peer="relay") if connect else None
        try:
            if connect:
                self._socket.connect(endpoint)
            else:
                self._socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            hint = "expected tcp://HOST:PORT" + ("" if connect else ", a free port")
            raise EdgeemoError(f"{flag} {endpoint}: {exc.strerror} ({hint})") from None
        self.endpoint: str = endpoint if connect else self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0
        self._packer = msgpack.Packer(use_bin_type=True)
        self._topics: dict[tuple[str, str], bytes] = {}
        self._seq: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()  # one message at a time: topic, sequence number, pack, send

    def publish_prediction(
        self, stream: str, *, captured_at: float, face_found: bool, scores: Mapping[str, float] | Sequence[float],
        label: str, landmarks: int, k: Mapping[str, int], bundle: str, latency: Mapping[str, float],
        face: int | None = None, box: Mapping[str, float] | Sequence[float] | None = None,
        pose: Mapping[str, float] | None = None, pose_beyond_training: bool | None = None,
        explanation: Mapping[str, Any] | None = None, calibration: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Stamp, check, pack and send one prediction; return the payload sent.

        ``captured_at`` is the frame's ``time.monotonic()`` capture time (what the sources return);
        ``latency`` holds the seconds the caller measured: ``capture``, ``wait``, ``landmarks``, ``classify``.
        This adds ``publish`` and ``total`` (see ``edgeemo.messages``)."""
        now = time.monotonic()
        wall = time.time()
        total = now - captured_at
        try:
            measured = (latency["capture"], latency["wait"], latency["landmarks"], latency["classify"])
        except KeyError as exc:
            raise EdgeemoError(f"prediction field 'latency.{exc.args[0]}': missing") from None
        capture, wait, landmarks_s, classify = measured
        stages = {
            "capture": capture, "wait": wait, "landmarks": landmarks_s, "classify": classify,
            "publish": max(0.0, total - wait - landmarks_s - classify), "total": total,
        }
        key = ("prediction", stream)
        with self._lock:
            topic = self._topics.get(key) or self._topic(key)
            payload = build_prediction(
                stream=stream, seq=self._seq[key], t_capture=wall - total, t_publish=wall, face_found=face_found,
                scores=scores, label=label, landmarks=landmarks, k=k, bundle=bundle, latency=stages,
                face=face, box=box, pose=pose, pose_beyond_training=pose_beyond_training,
                explanation=explanation, calibration=calibration,
            )
            self._send(key, topic, payload)
        return payload

    def publish_status(self, stream: str, event: str, detail: str = "", face: int | None = None) -> dict[str, Any]:
        """Send one status event (``edgeemo.messages.STATUS_EVENTS``), of one face if ``face`` is given; return
        the payload sent."""
        key = ("status", stream)
        with self._lock:
            topic = self._topics.get(key) or self._topic(key)
            payload = build_status(stream=stream, seq=self._seq[key], t_publish=time.time(), event=event,
                                   detail=detail, face=face)
            self._send(key, topic, payload)
        return payload

    def close(self) -> None:
        """Close the socket, waiting at most ``linger_s`` for queued messages to leave."""
        if getattr(self, "peer_monitor", None) is not None:
            self.peer_monitor.close()
        self._socket.close(linger=self._linger_ms)
        if self._auth is not None:
            self._auth.stop()
        if self._own_context:
            self._context.term()

    def __enter__(self) -> PredictionPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _topic(self, key: tuple[str, str]) -> bytes:
        """Check a stream id once, on its first message, and remember its topic."""
        kind, stream = key
        topic = (prediction_topic(stream) if kind == "prediction" else status_topic(stream)).encode()
        self._topics[key] = topic
        self._seq[key] = 0
        return topic

    def _send(self, key: tuple[str, str], topic: bytes, payload: dict[str, Any]) -> None:
        # Pack before sending anything: a failure after the topic frame had gone would leave a stray frame.
        data = self._packer.pack(payload)
        self._socket.send_multipart((topic, data), flags=zmq.NOBLOCK)
        self._seq[key] += 1
        self.sent += 1
