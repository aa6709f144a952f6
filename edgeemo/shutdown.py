"""Bounded shutdown for ``edgeemo serve``: SIGINT or SIGTERM ends the process within 2 s, whatever it is doing.

    shutdown = Shutdown().install()       # in the main thread, as early as possible
    shutdown.on_stop(interrupt_sources)   # once there is something to interrupt
    try:
        ... run until shutdown.stop is set ...
    finally:
        shutdown.restore()

Python runs signal handlers only in the main thread, between bytecodes: a main thread inside a long C
call (MediaPipe loading its graph, ONNX Runtime a model) would not see SIGTERM until it returns. So the
handler itself does nothing; the signal's number reaches a watcher thread through Python's wakeup fd,
which the C-level handler writes at once on whatever thread got the signal. The first signal sets
``stop``, calls ``on_stop`` (interrupting the sources) and arms a timer: the orderly shutdown (last
status messages, sockets closed) has ``grace_s``, after which the process exits 0 anyway, since a
source stuck in a driver or FFmpeg call must not keep it past systemd's or Kubernetes' stop timeout. A
second signal exits at once, with 128 + the signal's number, as a shell reports a process it killed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# What serve promises its supervisors (systemd's TimeoutStopSec, Kubernetes' grace period must be longer).
STOP_WITHIN_S = 2.0
# Under 2 s from the signal to the exit, with room for the interpreter's own exit after serve returns.
DEFAULT_GRACE_S = 1.5


def force_exit(code: int, why: str) -> None:
    """Say why, flush what can be flushed, and end the process now (no clean-up that could hang)."""
    try:
        sys.stdout.flush()
    except Exception:  # a closed or broken stdout must not stop the exit
        pass
    try:
        sys.stderr.write(f"edgeemo serve: {why}\n")
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(code)


class Shutdown:
    def __init__(self, on_stop: Callable[[], None] = lambda: None, *, grace_s: float = DEFAULT_GRACE_S) -> None:
        self.stop = threading.Event()
        self.grace_s = grace_s
        self.signal_name: str | None = None
        self._on_stop = on_stop
        self._lock = threading.Lock()
        self._signals = 0
        self._previous: dict[int, object] = {}
        self._previous_fd = -1
        self._read_fd = self._write_fd = -1
        self._watcher: threading.Thread | None = None

    @property
    def installed(self) -> bool:
        return self._watcher is not None

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the first signal; at once if it has already come."""
        with self._lock:
            self._on_stop = callback
            requested = self.stop.is_set()
        if requested:
            callback()

    def install(self) -> Shutdown:
        """Take over SIGINT and SIGTERM. Only the main thread may (Python's rule): elsewhere this does nothing,
        and whoever runs serve on a thread stops it with ``request``."""
        if threading.current_thread() is not threading.main_thread():
            return self
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # the C handler must never block
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, _ignore) for sig in STOP_SIGNALS}
        self._watcher = threading.Thread(target=self._watch, name="edgeemo-signals", daemon=True)
        self._watcher.start()
        return self

    def restore(self) -> None:
        """Give the signals back. A timer already armed stays armed: the process is on its way out."""
        if self._watcher is None:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._write_fd)  # the watcher reads end-of-file and ends
        self._watcher.join(1.0)
        os.close(self._read_fd)
        self._watcher = None

    def request(self, signum: int) -> None:
        """What a signal does (also callable directly, for example from tests)."""
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            force_exit(128 + signum, f"second {name}: exiting now")
        self.signal_name = name
        why = f"{name}: shutdown took over {self.grace_s:g} s; exiting without waiting for the rest"
        timer = threading.Timer(self.grace_s, force_exit, (0, why))
        timer.daemon = True
        timer.start()
        with self._lock:
            self.stop.set()
            callback = self._on_stop
        callback()

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in STOP_SIGNALS:
                    self.request(signum)


def _ignore(signum, frame) -> None:
    """The Python-level handler: the watcher thread has already acted on the signal."""
