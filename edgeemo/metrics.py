"""Prometheus metrics for ``edgeemo serve``, and the HTTP endpoint that serves them.

    metrics = Metrics(bundle="bundle-id")
    cam = metrics.stream("cam0")          # label values resolved once, not per frame
    cam.frame(); cam.face_found(); cam.prediction("happiness")
    cam.observe_latency(payload["latency"])  # the map a published prediction carries
    server = serve_metrics(metrics.registry, port=9108)
    ...
    server.close()

Every per-stream metric has a ``stream`` label. Latency buckets: one frame's work spans four orders of
magnitude, from tens of microseconds (publishing a message) through about 3 ms (face mesh) to a frame
period (33 ms at 30 frames/s, what waiting for a camera costs), and a slow machine or a stall can take
a second. The client's default buckets (5 ms to 10 s, for web requests) would put every publish and
classify in the first bucket and waste half their range on seconds we never see, so we use 1-2.5-5
steps from 100 µs to 1 s, with end-to-end buckets denser around a frame period, where a latency
objective would sit.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, start_http_server
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.messages import LABELS, LATENCY_STAGES

STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
END_TO_END_BUCKETS = (0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.033, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9108


class Metrics:
    """The edgeemo metrics, registered in ``registry`` (``None``: a new registry that also has the process
    and platform collectors, as the client's global one does; tests pass a fresh empty one).

    Thread-safe, as prometheus_client's metrics are.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, bundle: str = "") -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        self.registry = registry
        self._info = Info("edgeemo", "edgeemo version and the model bundle it serves", registry=registry)
        self.set_bundle(bundle)
        stream = ("stream",)
        self.frames = Counter("edgeemo_frames", "Frames read from the source", stream, registry=registry)
        self.faces_found = Counter("edgeemo_faces_found", "Frames in which a face was found", stream, registry=registry)
        self.predictions = Counter(
            "edgeemo_predictions", "Predictions published, by fused label", ("stream", "label"), registry=registry
        )
        self.frames_dropped = Counter(
            "edgeemo_frames_dropped", "Frames replaced by a newer one before processing (slower than the source)",
            stream, registry=registry,
        )
        self.source_reopens = Counter(
            "edgeemo_source_reopens", "Times a lost source was opened again", stream, registry=registry
        )
        self.windows_refused = Counter(
            "edgeemo_windows_refused", "Windows not classified: no frame near a time the window needs (frames "
            "dropped, a stall; see docs/streaming.md)", stream, registry=registry,
        )
        self.stage_latency = Histogram(
            "edgeemo_stage_latency_seconds", "Seconds per pipeline stage and frame (as in the prediction message)",
            ("stream", "stage"), buckets=STAGE_BUCKETS, registry=registry,
        )
        self.end_to_end_latency = Histogram(
            "edgeemo_end_to_end_latency_seconds", "Seconds from a frame's capture to its prediction's publication",
            stream, buckets=END_TO_END_BUCKETS, registry=registry,
        )

    def set_bundle(self, bundle: str) -> None:
        self._info.info({"version": __version__, "bundle": bundle})

    def stream(self, stream: str) -> StreamMetrics:
        """The metrics of one stream, with their label values bound once."""
        return StreamMetrics(self, stream)


class StreamMetrics:
    """One stream's metrics: a tiny method per event, for the per-frame loop."""

    def __init__(self, metrics: Metrics, stream: str) -> None:
        self.stream = stream
        self._frames = metrics.frames.labels(stream)
        self._faces = metrics.faces_found.labels(stream)
        self._predictions = {label: metrics.predictions.labels(stream, label) for label in LABELS}
        self._frames_dropped = metrics.frames_dropped.labels(stream)
        self._reopens = metrics.source_reopens.labels(stream)
        self._windows_refused = metrics.windows_refused.labels(stream)
        self._stages = tuple((stage, metrics.stage_latency.labels(stream, stage)) for stage in LATENCY_STAGES)
        self._end_to_end = metrics.end_to_end_latency.labels(stream)

    def frame(self) -> None:
        self._frames.inc()

    def face_found(self) -> None:
        self._faces.inc()

    def prediction(self, label: str) -> None:
        try:
            self._predictions[label].inc()
        except KeyError:
            raise ValueError(f"unknown label {label!r} (expected one of {', '.join(LABELS)})") from None

    def frames_dropped(self, count: int = 1) -> None:
        self._frames_dropped.inc(count)

    def source_reopened(self) -> None:
        self._reopens.inc()

    def window_refused(self) -> None:
        self._windows_refused.inc()

    def observe_latency(self, latency: Mapping[str, float]) -> None:
        """Observe each stage and the total of a prediction message's ``latency`` map."""
        for stage, histogram in self._stages:
            histogram.observe(latency[stage])
        self._end_to_end.observe(latency["total"])


class MetricsServer:
    """The running /metrics endpoint; ``close()`` stops it."""

    def __init__(self, server, thread) -> None:
        self._server = server
        self._thread = thread
        self.host, self.port = server.server_address[:2]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve_metrics(
    registry: CollectorRegistry, host: str = DEFAULT_METRICS_HOST, port: int = DEFAULT_METRICS_PORT
) -> MetricsServer:
    """Serve ``registry`` at http://HOST:PORT/metrics on a daemon thread (port 0: any free port)."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise EdgeemoError(f"--metrics-port {port}: already in use on {host} (pick another port)") from None
        raise EdgeemoError(f"--metrics-port {port} on {host}: {exc.strerror or exc}") from None
    return MetricsServer(server, thread)
