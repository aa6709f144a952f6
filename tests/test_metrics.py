"""Metrics: names and values read through the registry's public API, and /metrics over real HTTP."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.metrics import END_TO_END_BUCKETS, STAGE_BUCKETS, Metrics, serve_metrics

LATENCY = {
    "capture": 0.030, "wait": 0.0004, "landmarks": 0.0031, "classify": 0.00045, "publish": 0.00007, "total": 0.0040,
}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), bundle="bundle-a")


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_counters_per_stream(metrics):
    cam, other = metrics.stream("cam0"), metrics.stream("cam1")
    for _ in range(3):
        cam.frame()
    cam.face_found()
    cam.prediction("happiness")
    cam.prediction("happiness")
    cam.prediction("none")
    cam.frames_dropped(4)
    cam.source_reopened()
    other.frame()
    assert value(metrics, "edgeemo_frames_total", stream="cam0") == 3
    assert value(metrics, "edgeemo_frames_total", stream="cam1") == 1
    assert value(metrics, "edgeemo_faces_found_total", stream="cam0") == 1
    assert value(metrics, "edgeemo_predictions_total", stream="cam0", label="happiness") == 2
    assert value(metrics, "edgeemo_predictions_total", stream="cam0", label="none") == 1
    assert value(metrics, "edgeemo_predictions_total", stream="cam0", label="anger") == 0  # present from the start
    assert value(metrics, "edgeemo_frames_dropped_total", stream="cam0") == 4
    assert value(metrics, "edgeemo_source_reopens_total", stream="cam0") == 1
    assert value(metrics, "edgeemo_info", version=__version__, bundle="bundle-a") == 1
    with pytest.raises(ValueError, match="unknown label"):
        cam.prediction("contempt")


def test_latency_histograms_use_our_buckets(metrics):
    cam = metrics.stream("cam0")
    cam.observe_latency(LATENCY)
    cam.observe_latency({**LATENCY, "publish": 0.00002, "total": 0.2})

    def bucket(name: str, le: float, **labels: str) -> float:
        return value(metrics, name + "_bucket", stream="cam0", le=str(le), **labels)

    assert bucket("edgeemo_stage_latency_seconds", 0.0001, stage="publish") == 2  # both under 100 µs
    assert bucket("edgeemo_stage_latency_seconds", 0.0025, stage="landmarks") == 0
    assert bucket("edgeemo_stage_latency_seconds", 0.005, stage="landmarks") == 2
    assert bucket("edgeemo_stage_latency_seconds", 0.025, stage="capture") == 0
    assert bucket("edgeemo_stage_latency_seconds", 0.05, stage="capture") == 2
    assert value(metrics, "edgeemo_stage_latency_seconds_count", stream="cam0", stage="wait") == 2
    assert bucket("edgeemo_end_to_end_latency_seconds", 0.005) == 1
    assert bucket("edgeemo_end_to_end_latency_seconds", 0.25) == 2
    assert value(metrics, "edgeemo_end_to_end_latency_seconds_sum", stream="cam0") == pytest.approx(0.204)


def test_buckets_span_sub_millisecond_to_a_second():
    for buckets in (STAGE_BUCKETS, END_TO_END_BUCKETS):
        assert list(buckets) == sorted(buckets) and buckets[-1] == 1.0
    assert STAGE_BUCKETS[0] <= 0.0001 and END_TO_END_BUCKETS[0] < 0.005  # the client's default starts at 5 ms


def test_metrics_served_over_http_parse(metrics):
    cam = metrics.stream("cam0")
    cam.frame()
    cam.observe_latency(LATENCY)
    with serve_metrics(metrics.registry, port=0) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        with urllib.request.urlopen(server.url, timeout=10) as response:
            text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("edgeemo_frames", "edgeemo_faces_found", "edgeemo_predictions", "edgeemo_frames_dropped",
                 "edgeemo_source_reopens", "edgeemo_stage_latency_seconds", "edgeemo_end_to_end_latency_seconds",
                 "edgeemo_info"):
        assert name in families, name
    assert families["edgeemo_stage_latency_seconds"].type == "histogram"
    bounds = sorted({
        float(s.labels["le"]) for s in families["edgeemo_stage_latency_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["stage"] == "classify"
    })
    assert bounds == [*STAGE_BUCKETS, float("inf")]
    frames = [s for s in families["edgeemo_frames"].samples if s.name == "edgeemo_frames_total"]
    assert [(s.labels, s.value) for s in frames] == [({"stream": "cam0"}, 1.0)]


def test_port_in_use_names_the_flag():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EdgeemoError, match=f"--metrics-port {port}: already in use"):
            serve_metrics(CollectorRegistry(), port=port)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the process collector reads /proc")
def test_default_registry_has_process_metrics():
    assert Metrics().registry.get_sample_value("process_cpu_seconds_total") is not None
