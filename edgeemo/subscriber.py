"""A small Python client for what ``edgeemo serve`` publishes.

    from edgeemo.subscriber import Subscriber

    with Subscriber("tcp://127.0.0.1:5556", streams=["cam0"], timeout_s=5) as sub:
        for topic, message in sub:
            if message["kind"] == "prediction":
                print(message["seq"], message["label"], message["scores"])

Several people in view of one stream: each prediction names its face (``message["face"]``, an id per
stream); ``faces=[1]`` keeps that face's predictions and status, and the stream's own status.

Iteration stops when no message arrives within ``timeout_s`` (``None`` waits for ever). Every message is
checked against the contract (``edgeemo.messages``); a malformed one raises EdgeemoError naming the field.
Subscribers in other languages need only ZeroMQ SUB and msgpack: see docs/contracts/messages.md.

A publisher off loopback encrypts with CURVE; pass its keys (``edgeemo.keys``)::

    Subscriber("tcp://10.0.0.7:5556", curve=load_client_keys(Path("keys")))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import zmq

from edgeemo.errors import EdgeemoError
from edgeemo.keys import ClientKeys, make_client, require_keys
from edgeemo.messages import DEFAULT_ENDPOINT, PRED_PREFIX, STATUS_PREFIX, check_stream, unpack
from edgeemo.peers import PeerMonitor

DEFAULT_RCVHWM = 1000


class Subscriber:
    """A ZeroMQ SUB socket connected to an edgeemo publisher, yielding ``(topic, message)`` pairs.

    ``streams`` limits it to those stream ids (``None``: every stream); ``status`` adds status messages;
    ``faces`` limits it to those face ids (``None``: every face), keeping status that names no face.
    ``dropped`` counts messages missed, from gaps in ``seq`` (a ``seq`` that goes back means the publisher
    restarted, and counting starts again). ZeroMQ drops the first messages before a connection
    completes, so counting starts at the first message seen of each stream and kind. ``curve`` makes it a
    CURVE client of the publisher whose server key it holds; an endpoint off loopback needs it.

    ``on_peer(state, detail)`` hears, once per change, whether the publisher is reached (``edgeemo.peers``:
    ``connected``, ``no_peer``, ``handshake_failed``), called from ``receive``; ``peer_state`` is the last.

    Not thread-safe: use it from one thread.
    """

    def __init__(
        self, endpoint: str = DEFAULT_ENDPOINT, streams: Sequence[str] | None = None, status: bool = True, *,
        timeout_s: float | None = None, rcvhwm: int = DEFAULT_RCVHWM, curve: ClientKeys | None = None,
        context: zmq.Context | None = None, on_peer: Callable[[str, str], None] | None = None,
        faces: Sequence[int] | None = None,
    ) -> None:
        require_keys(endpoint, curve, "endpoint")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.dropped = 0
        self._streams = None if streams is None else frozenset(check_stream(s) for s in streams)
        self._faces = None if faces is None else frozenset(faces)
        prefixes = [PRED_PREFIX] + ([STATUS_PREFIX] if status else [])
        if self._streams is not None:
            prefixes = [p + s for p in prefixes for s in sorted(self._streams)]
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            make_client(self._socket, curve)
        for prefix in prefixes:
            self._socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self._on_peer = on_peer
        self._peers = PeerMonitor(self._socket, endpoint, peer="publisher") if on_peer is not None else None
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        if self._peers is not None:
            self._poller.register(self._peers.socket, zmq.POLLIN)
        try:
            self._socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise EdgeemoError(f"endpoint {endpoint}: {exc.strerror} (expected tcp://HOST:PORT)") from None
        self._last_seq: dict[tuple[str, str], int] = {}

    def receive(self, timeout_s: float | None = None) -> tuple[str, dict[str, Any]] | None:
        """The next message as ``(topic, message)``, or ``None`` if none arrives within ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            timeout_ms = None if deadline is None else max(0, round((deadline - time.monotonic()) * 1000))
            ready = dict(self._poller.poll(timeout_ms))
            if self._peers is not None and self._peers.socket in ready:
                for state, detail in self._peers.poll():
                    self._on_peer(state, detail)
            if self._socket not in ready:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            frames = self._socket.recv_multipart(zmq.NOBLOCK)
            if len(frames) != 2:
                raise EdgeemoError(
                    f"message from {self.endpoint}: expected 2 frames [topic, payload], got {len(frames)}"
                )
            message = unpack(frames[0], frames[1])
            # A prefix subscription to "cam" also delivers "cam2": keep exact matches only.
            if self._streams is None or message["stream"] in self._streams:
                self._count_gap(message)  # before the face filter: the others' messages are no gap
                if self._face_wanted(message):
                    return frames[0].decode(), message

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        while (item := self.receive(self.timeout_s)) is not None:
            yield item

    @property
    def peer_state(self) -> str | None:
        return None if self._peers is None else self._peers.state

    def close(self) -> None:
        if getattr(self, "_peers", None) is not None:
            self._peers.close()
        self._socket.close(linger=0)
        if self._own_context:
            self._context.term()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _face_wanted(self, message: dict[str, Any]) -> bool:
        if self._faces is None:
            return True
        face = message.get("face")
        if face is None:  # a status of the stream itself (started, camera_lost, ...), or an older publisher's
            return message["kind"] == "status"
        return face in self._faces

    def _count_gap(self, message: dict[str, Any]) -> None:
        key = (message["kind"], message["stream"])
        seq = message["seq"]
        last = self._last_seq.get(key)
        if last is not None and seq > last + 1:
            self.dropped += seq - last - 1
        self._last_seq[key] = seq
