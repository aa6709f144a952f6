"""``edgeemo relay``: one address where many ``edgeemo serve`` publish and many subscribers read.

    serve --connect tcp://relay:5555 --stream door  --+                     +-- subscribe tcp://relay:5556
    serve --connect tcp://relay:5555 --stream desk  --+--> XSUB | XPUB --+--- dashboard, recorder, ...
    serve --connect tcp://relay:5555 --stream lobby --+   (this relay)     +-- ...

A ZeroMQ XSUB/XPUB proxy: messages go from publishers to subscribers unchanged, subscriptions go back the
other way, so each publisher sends only the topics someone reads. Publishers and subscribers can start,
stop and restart in any order; a message sent while nobody subscribed to its topic is dropped, as with a
plain PUB socket. With CURVE keys both sides are encrypted and only known client keys are let in; an
address beyond loopback requires them (``edgeemo.keys``).
"""

from __future__ import annotations

import threading

import zmq

from edgeemo.errors import EdgeemoError
from edgeemo.keys import Authenticator, ServerKeys, make_server, require_keys
from edgeemo.messages import DEFAULT_ENDPOINT

# Where serve processes connect: the port below the one subscribers use (DEFAULT_ENDPOINT).
DEFAULT_PUBLISHERS = "tcp://127.0.0.1:5555"
DEFAULT_SUBSCRIBERS = DEFAULT_ENDPOINT
LINGER_MS = 500  # at stop, messages already queued for subscribers get this long to leave


class Relay:
    """The proxy, bound at construction (errors name the flag), running on its own thread between
    ``start`` and ``stop``. Use it as a context manager. ``publishers`` and ``subscribers`` are the bound
    endpoints (with the port the system chose for ``tcp://HOST:*``).

    ``start`` and ``stop`` must be called from the thread that made the relay.
    """

    def __init__(self, publishers: str = DEFAULT_PUBLISHERS, subscribers: str = DEFAULT_SUBSCRIBERS, *,
                 curve: ServerKeys | None = None) -> None:
        require_keys(publishers, curve, "--publishers")
        require_keys(subscribers, curve, "--subscribers")
        self._context = zmq.Context()
        self._auth = Authenticator(self._context, curve) if curve is not None else None
        self._sockets: list[zmq.Socket] = []
        try:
            self._incoming = self._bind(zmq.XSUB, publishers, "--publishers", curve)
            self._outgoing = self._bind(zmq.XPUB, subscribers, "--subscribers", curve)
            # proxy_steerable returns when its control socket receives TERMINATE: no signal needs to reach the thread.
            control = f"inproc://edgeemo-relay-control-{id(self)}"
            self._control_in = self._socket(zmq.PAIR, linger_ms=0)
            self._control_in.bind(control)
            self._control_out = self._socket(zmq.PAIR, linger_ms=0)
            self._control_out.connect(control)
        except BaseException:
            self._close()
            raise
        self.publishers = self._incoming.getsockopt_string(zmq.LAST_ENDPOINT)
        self.subscribers = self._outgoing.getsockopt_string(zmq.LAST_ENDPOINT)
        self._thread = threading.Thread(target=self._run, name="edgeemo-relay", daemon=True)
        self._error: zmq.ZMQError | None = None

    def start(self) -> Relay:
        self._thread.start()
        return self

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop relaying, wait for the proxy thread, close everything; raises what ended the proxy early."""
        if self._thread.is_alive():
            self._control_out.send(b"TERMINATE")
            self._thread.join()
        self._close()
        if self._error is not None:
            raise EdgeemoError(f"relay: stopped by ZeroMQ error {self._error}")

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            zmq.proxy_steerable(self._incoming, self._outgoing, None, self._control_in)
        except zmq.ZMQError as exc:  # handed to stop(), on the owning thread
            self._error = exc

    def _socket(self, kind: int, linger_ms: int = LINGER_MS) -> zmq.Socket:
        socket = self._context.socket(kind)
        socket.setsockopt(zmq.LINGER, linger_ms)
        self._sockets.append(socket)
        return socket

    def _bind(self, kind: int, endpoint: str, flag: str, curve: ServerKeys | None) -> zmq.Socket:
        socket = self._socket(kind)
        if curve is not None:
            make_server(socket, curve)
        try:
            socket.bind(endpoint)
        except zmq.ZMQError as exc:
            raise EdgeemoError(f"{flag} {endpoint}: {exc.strerror} (expected tcp://HOST:PORT, a free port)") from None
        return socket

    def _close(self) -> None:
        for socket in self._sockets:
            socket.close()
        self._sockets.clear()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        self._context.term()
