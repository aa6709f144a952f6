"""Whether a connecting ZeroMQ socket has a peer: ZeroMQ's socket monitor, read without blocking.

A connecting socket never fails: with nothing listening it retries in the background, and with CURVE
keys that do not match the handshake fails and is retried, while every message sent meanwhile is
dropped without a word. ``PeerMonitor`` turns the monitor's events into changes of one state, so a
caller can report each change once (a status event, a log line) and count what matters (metrics):

    monitor = PeerMonitor(socket, "tcp://relay:5555")   # before connect(), to see the first attempt
    for state, detail in monitor.poll():                # "connected", "no_peer" or "handshake_failed"
        ...
    monitor.peers, monitor.handshake_failures

Not thread-safe: poll it from the thread that uses the socket.
"""

from __future__ import annotations

import zmq
from zmq.utils.monitor import recv_monitor_message

CONNECTED, NO_PEER, HANDSHAKE_FAILED = "connected", "no_peer", "handshake_failed"
_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_WATCHED = zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
for _event in _FAILED:
    _WATCHED |= _event


class PeerMonitor:
    def __init__(self, socket: zmq.Socket, endpoint: str, *, peer: str = "peer") -> None:
        self.endpoint, self.peer = endpoint, peer
        # One endpoint: at most one connection at a time. (The monitor gives the handshake's event no file
        # descriptor, so connections cannot be told apart anyway.)
        self.peers = 0  # 1 while a connection whose handshake passed is open
        self.handshake_failures = 0
        self.state: str | None = None  # None until the first attempt is known
        self._socket = socket
        self._monitor = socket.get_monitor_socket(_WATCHED)

    @property
    def socket(self) -> zmq.Socket:
        """The monitor's own socket, to wait on with a ``zmq.Poller`` beside the watched one."""
        return self._monitor

    def poll(self) -> list[tuple[str, str]]:
        """The state changes since the last poll, each ``(state, detail)``; returns at once."""
        changes = []
        while self._monitor is not None and self._monitor.poll(0):
            message = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            event = message["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.peers = 1
                change = (CONNECTED, f"{self.peer} at {self.endpoint} reached")
            elif event == zmq.EVENT_DISCONNECTED:
                if not self.peers:
                    continue  # the end of a connection whose handshake failed: already reported
                self.peers = 0
                change = (NO_PEER, f"{self.peer} at {self.endpoint} went away; reconnecting")
            elif event == zmq.EVENT_CONNECT_RETRIED:
                if self.peers:
                    continue
                change = (NO_PEER, f"no {self.peer} at {self.endpoint} (nothing listening); retrying")
            elif event in _FAILED:
                self.handshake_failures += 1
                change = (HANDSHAKE_FAILED, f"the handshake with the {self.peer} at {self.endpoint} failed "
                                            "(CURVE keys that do not match, or not an edgeemo socket); retrying")
            else:
                continue
            if change[0] != self.state:
                self.state = change[0]
                changes.append(change)
        return changes

    def close(self) -> None:
        """Stop monitoring; call before the socket closes (an open monitor holds up the context's term)."""
        if self._monitor is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
