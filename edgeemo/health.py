"""What ``/healthz`` and ``/readyz`` answer for ``edgeemo serve``, from what its main loop and stream threads report.

    health = Health(["cam0", "cam1"])
    health.beat()            # the main loop, once per turn (at least every 0.2 s)
    health.beat("cam0")      # that stream's thread, once per turn (at least every 0.2 s, even with no frame)
    health.frame("cam0")     # that stream's thread, when it takes a frame
    alive, text = health.liveness()    # /healthz: the loop is turning
    ready, text = health.readiness()   # /readyz: every stream had a frame within ``stale_s``

Liveness and readiness answer different questions, as Kubernetes' probes do: a loop that stopped
turning (stuck in a call, deadlocked) will not recover by itself, so /healthz fails and the
orchestrator restarts the process; a camera that is unplugged will come back by itself (serve reopens
it), so only /readyz fails, which takes the pod out of service without restarting it. The /metrics
endpoint answers from its own thread whatever the loop does, which is why it is not a health check.

Written by the main loop and the stream threads (each its own items) and read by the HTTP server's thread:
every update is one attribute or dict item assignment, which the GIL makes atomic, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

# The loop wakes at least every 0.2 s; a turn over several streams takes a few frames' work. Ten seconds
# without one is a loop that is stuck, not a busy one.
DEFAULT_STALL_S = 10.0
# Loading MediaPipe and the models takes seconds (more on a small board): the loop counts as alive
# while it has not started for this long.
DEFAULT_START_GRACE_S = 120.0
# A camera gives a frame every 33 ms; a stream without one for 5 s is down (being reopened, or stalled).
DEFAULT_STALE_S = 5.0


class Health:
    def __init__(self, streams: Iterable[str], *, stale_s: float = DEFAULT_STALE_S, stall_s: float = DEFAULT_STALL_S,
                 start_grace_s: float = DEFAULT_START_GRACE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_s, self.stall_s, self.start_grace_s = stale_s, stall_s, start_grace_s
        self._clock = clock
        self._started = clock()
        self._beat: float | None = None
        self._stream_beats: dict[str, float] = {}  # each stream thread's last turn
        self._stopping = False
        self._last_frame: dict[str, float | None] = {stream: None for stream in streams}
        self._ended: dict[str, str] = {}  # stream -> "ended" (its file ended) or "failed: why"

    def beat(self, stream: str | None = None) -> None:
        """The main loop turned (``stream`` None), or that stream's thread did."""
        if stream is None:
            self._beat = self._clock()
        else:
            self._stream_beats[stream] = self._clock()

    def frame(self, stream: str) -> None:
        self._last_frame[stream] = self._clock()

    def ended(self, stream: str, failure: str | None = None) -> None:
        """The stream will give no more frames: its file ended, or (``failure``) it failed for good."""
        self._ended[stream] = "ended" if failure is None else f"failed: {failure}"

    def stopping(self) -> None:
        """Shutting down: not ready any more (stop sending work here), still alive."""
        self._stopping = True

    def frame_age(self, stream: str) -> float:
        """Seconds since the stream's last frame; before its first, since serve started."""
        last = self._last_frame[stream]
        return self._clock() - (self._started if last is None else last)

    def liveness(self) -> tuple[bool, str]:
        now = self._clock()
        if self._beat is None:
            waited = now - self._started
            if waited <= self.start_grace_s:
                return True, f"starting ({waited:.1f} s)"
            return False, f"the processing loop has not started after {waited:.1f} s"
        since = now - self._beat
        if since > self.stall_s:
            return False, f"the processing loop is stuck: last turn {since:.1f} s ago (limit {self.stall_s:g} s)"
        for stream, beat in self._stream_beats.items():
            if stream not in self._ended and now - beat > self.stall_s:
                return False, (f"{stream}: its processing thread is stuck: last turn {now - beat:.1f} s ago "
                               f"(limit {self.stall_s:g} s)")
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        if self._stopping:
            return False, "shutting down"
        lines, ready = [], True
        for stream, last in self._last_frame.items():
            state = self._ended.get(stream)
            if state == "ended":
                lines.append(f"{stream}: ended")  # a file that played to its end is done, not down
                continue
            if state is not None:
                ready = False
                lines.append(f"{stream}: {state}")
                continue
            age = self.frame_age(stream)
            if last is None:
                ready = False
                lines.append(f"{stream}: no frame yet ({age:.1f} s)")
            elif age > self.stale_s:
                ready = False
                lines.append(f"{stream}: last frame {age:.1f} s ago (limit {self.stale_s:g} s)")
            else:
                lines.append(f"{stream}: ok, last frame {age:.3f} s ago")
        return ready, "\n".join(lines)
