"""Prometheus metrics for ``edgeemo serve``, and the HTTP endpoint that serves them.

    metrics = Metrics(bundle="bundle-id")
    cam = metrics.stream("cam0")          # label values resolved once, not per frame
    cam.frame(); cam.face_found(); cam.track_started(1); cam.prediction("happiness")
    cam.observe_latency(payload["latency"])  # the map a published prediction carries
    server = serve_metrics(metrics.registry, port=9108, health=health)   # + /healthz, /readyz
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
import socket
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.messages import LABELS, LATENCY_STAGES

STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
END_TO_END_BUCKETS = (0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.033, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9108
# Beside /metrics (edgeemo.health): the process should be restarted / traffic should be sent here.
LIVENESS_PATH, READINESS_PATH = "/healthz", "/readyz"


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
        self.faces_tracked = Gauge(
            "edgeemo_faces_tracked", "Faces followed now, each its own window (in view or briefly missed)", stream,
            registry=registry,
        )
        self.tracks_started = Counter(
            "edgeemo_tracks_started", "Faces that came into view and got a new id", stream, registry=registry
        )
        self.predictions = Counter(
            "edgeemo_predictions", "Predictions published, by fused label", ("stream", "label"), registry=registry
        )
        self.frames_dropped = Counter(
            "edgeemo_frames_dropped", "Frames pushed out of a full frame queue before processing (behind the source)",
            stream, registry=registry,
        )
        self.frames_skipped = Counter(
            "edgeemo_frames_skipped", "Frames passed over on purpose: serve --process-every N runs the face mesh "
            "on every N-th frame only", stream, registry=registry,
        )
        self.source_reopens = Counter(
            "edgeemo_source_reopens", "Times a lost source was opened again", stream, registry=registry
        )
        self.source_open_failures = Counter(
            "edgeemo_source_open_failures", "Attempts to open a source (at start or after a loss) that failed",
            stream, registry=registry,
        )
        self.frames_corrupt = Counter(
            "edgeemo_frames_corrupt", "Frames skipped because they could not be decoded or were not an image",
            stream, registry=registry,
        )
        self.stream_errors = Counter(
            "edgeemo_stream_errors", "Errors in one stream's capture or processing, kept from the other streams",
            stream, registry=registry,
        )
        self.last_frame_age = Gauge(
            "edgeemo_last_frame_age_seconds", "Seconds since the stream's last frame (before its first: since start)",
            stream, registry=registry,
        )
        self.relay_connected = Gauge(
            "edgeemo_relay_connected", "With --connect: 1 while the relay is reached and the handshake passed, "
            "else 0 (always 0 when binding)", registry=registry,
        )
        self.relay_handshake_failures = Counter(
            "edgeemo_relay_handshake_failures", "With --connect: handshakes with the relay that failed "
            "(CURVE keys that do not match)", registry=registry,
        )
        self.rests_established = Counter(
            "edgeemo_rests_established", "Faces whose resting face was established (calibrated bundles; by the "
            "estimator or on request, docs/calibration.md)", stream, registry=registry,
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

        self._handshake_failures = 0

    def relay_state(self, peers: int, handshake_failures: int) -> None:
        """The relay connection now, and its handshake failures so far (``edgeemo.peers.PeerMonitor``)."""
        self.relay_connected.set(1 if peers else 0)
        if handshake_failures > self._handshake_failures:
            self.relay_handshake_failures.inc(handshake_failures - self._handshake_failures)
            self._handshake_failures = handshake_failures

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
        self._tracked = metrics.faces_tracked.labels(stream)
        self._tracks_started = metrics.tracks_started.labels(stream)
        self._predictions = {label: metrics.predictions.labels(stream, label) for label in LABELS}
        self._frames_dropped = metrics.frames_dropped.labels(stream)
        self._frames_skipped = metrics.frames_skipped.labels(stream)
        self._reopens = metrics.source_reopens.labels(stream)
        self._open_failures = metrics.source_open_failures.labels(stream)
        self._corrupt = metrics.frames_corrupt.labels(stream)
        self._errors = metrics.stream_errors.labels(stream)
        self._frame_age = metrics.last_frame_age.labels(stream)
        self._windows_refused = metrics.windows_refused.labels(stream)
        self._rests = metrics.rests_established.labels(stream)
        self._stages = tuple((stage, metrics.stage_latency.labels(stream, stage)) for stage in LATENCY_STAGES)
        self._end_to_end = metrics.end_to_end_latency.labels(stream)

    def frame(self) -> None:
        self._frames.inc()

    def face_found(self) -> None:
        self._faces.inc()

    def track_started(self, tracked: int) -> None:
        """A new face id; ``tracked`` faces are followed now."""
        self._tracks_started.inc()
        self._tracked.set(tracked)

    def track_ended(self, tracked: int) -> None:
        self._tracked.set(tracked)

    def prediction(self, label: str) -> None:
        try:
            self._predictions[label].inc()
        except KeyError:
            raise ValueError(f"unknown label {label!r} (expected one of {', '.join(LABELS)})") from None

    def frames_dropped(self, count: int = 1) -> None:
        self._frames_dropped.inc(count)

    def frame_skipped(self) -> None:
        self._frames_skipped.inc()

    def source_reopened(self) -> None:
        self._reopens.inc()

    def source_open_failed(self, count: int = 1) -> None:
        self._open_failures.inc(count)

    def frames_corrupt(self, count: int = 1) -> None:
        self._corrupt.inc(count)

    def stream_error(self) -> None:
        self._errors.inc()

    def watch_frame_age(self, age: Callable[[], float]) -> None:
        """Read the last frame's age from ``age`` at each scrape (``edgeemo.health.Health.frame_age``)."""
        self._frame_age.set_function(age)

    def window_refused(self) -> None:
        self._windows_refused.inc()

    def rest_established(self) -> None:
        self._rests.inc()

    def observe_latency(self, latency: Mapping[str, float]) -> None:
        """Observe each stage and the total of a prediction message's ``latency`` map."""
        for stage, histogram in self._stages:
            histogram.observe(latency[stage])
        self._end_to_end.observe(latency["total"])


class MetricsServer:
    """The running metrics endpoint (and health endpoints); ``close()`` stops it."""

    def __init__(self, server, thread) -> None:
        self._server = server
        self._thread = thread
        self.host, self.port = server.server_address[:2]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds up shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's signature
        """A probe every few seconds would fill the log: log nothing."""


def health_app(metrics_app: Callable, health=None, actions: Mapping[str, Callable] | None = None) -> Callable:
    """A WSGI app: ``/healthz`` and ``/readyz`` from ``health`` (``edgeemo.health.Health``: 200 or 503, with
    a plain-text reason), POST ``actions`` (path -> callable(query: dict of str) -> (HTTP status, text)),
    everything else from prometheus_client's app."""
    checks = {LIVENESS_PATH: health.liveness, READINESS_PATH: health.readiness} if health is not None else {}
    actions = dict(actions or {})

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in actions:
            if environ.get("REQUEST_METHOD") != "POST":
                status, text = 405, f"{path}: POST only"
            else:
                query = {key: values[-1] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
                status, text = actions[path](query)
        elif path in checks:
            ok, text = checks[path]()
            status = 200 if ok else 503
        else:
            return metrics_app(environ, start_response)
        body = (text + "\n").encode()
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve_metrics(
    registry: CollectorRegistry, host: str = DEFAULT_METRICS_HOST, port: int = DEFAULT_METRICS_PORT, *, health=None,
    actions: Mapping[str, Callable] | None = None,
) -> MetricsServer:
    """Serve ``registry`` at http://HOST:PORT/metrics on a daemon thread (port 0: any free port), and with
    ``health`` (``edgeemo.health.Health``) /healthz and /readyz beside it, and POST ``actions`` (health_app).

    prometheus_client's own start_http_server serves only the registry, so this builds the same server
    (its WSGI app on wsgiref, a thread per request) with the health paths in front."""
    app = make_wsgi_app(registry)
    if health is not None or actions:
        app = health_app(app, health, actions)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        server_class = type("_Server", (_ThreadingServer,), {"address_family": family})
        server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise EdgeemoError(f"--metrics-port {port}: already in use on {host} (pick another port)") from None
        raise EdgeemoError(f"--metrics-port {port} on {host}: {exc.strerror or exc}") from None
    thread = threading.Thread(target=server.serve_forever, name="edgeemo-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
