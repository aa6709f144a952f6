"""The files in deploy/ parse, and every name, port and flag in them is one the code has: metric names from a
real ``Metrics`` registry, ports from ``edgeemo.metrics``, ``edgeemo.messages`` and ``edgeemo.relay``, command
lines through the real CLI parser. Nothing here runs systemd, a container engine or Kubernetes."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from edgeemo.cli import build_parser, main
from edgeemo.keys import leaves_machine
from edgeemo.messages import DEFAULT_ENDPOINT, LATENCY_STAGES
from edgeemo.health import DEFAULT_START_GRACE_S
from edgeemo.metrics import DEFAULT_METRICS_PORT, LIVENESS_PATH, READINESS_PATH, Metrics
from edgeemo.relay import DEFAULT_PUBLISHERS
from edgeemo.shutdown import STOP_WITHIN_S

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PREDICTIONS_PORT = int(DEFAULT_ENDPOINT.rsplit(":", 1)[1])
PUBLISHERS_PORT = int(DEFAULT_PUBLISHERS.rsplit(":", 1)[1])
USAGE_ERROR = 2  # what the CLI exits with on a mistake a restart cannot fix (edgeemo.cli.main)


def port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def host(endpoint: str) -> str:
    return endpoint.split("://", 1)[1].rsplit(":", 1)[0]


def parse_command(argv: list[str]):
    """The real CLI's reading of a command line from a deploy file (argparse exits on a bad flag)."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"edgeemo rejects the command line {argv}")


def check_endpoints_are_encrypted_beyond_loopback(args) -> None:
    endpoints = [args.connect or args.bind] if args.verb == "serve" else [args.publishers, args.subscribers]
    for endpoint in endpoints:
        assert not leaves_machine(endpoint) or args.curve_keys is not None, f"{endpoint} without --curve-keys"


# --- metrics: what the code registers ---------------------------------------------------------------

def registered_metrics() -> tuple[dict[str, set[str]], dict[str, str]]:
    """Every sample name a serve process exposes, with its label names; and each metric family's name and type."""
    metrics = Metrics(CollectorRegistry())
    metrics.stream("cam0")  # binds every labelled child, so every sample name appears
    samples: dict[str, set[str]] = {}
    families = {}
    for family in metrics.registry.collect():
        families[family.name] = family.type
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples, families


# --- systemd ------------------------------------------------------------------------------------------

def read_unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read(DEPLOY / "systemd" / name, encoding="utf-8")
    assert unit.sections() == ["Unit", "Service", "Install"]
    return unit


def exec_start(unit: configparser.ConfigParser) -> list[str]:
    """ExecStart's edgeemo arguments; ``$VAR`` words come from the EnvironmentFile and may be empty."""
    words = shlex.split(unit["Service"]["ExecStart"])
    assert words[0].endswith("/bin/edgeemo"), words[0]
    return [w for w in words[1:] if not w.startswith("$")]


@pytest.mark.parametrize("name", ["edgeemo-serve.service", "edgeemo-serve@.service", "edgeemo-relay.service"])
def test_units_restart_on_failure_but_not_on_a_usage_error_and_are_hardened(name):
    service = read_unit(name)["Service"]
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == str(USAGE_ERROR)
    assert service["KillSignal"] == "SIGTERM"
    assert service["User"] != "root"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                       "DevicePolicy": "closed", "CapabilityBoundingSet": ""}.items():
        assert service[key] == value, key
    assert read_unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_a_usage_error_exits_with_the_status_the_units_do_not_restart_on():
    assert main(["serve", "--stream", "a", "--stream", "b"]) == USAGE_ERROR
    # ...and a missing camera is not one: tests/test_operations.py runs serve with one and it keeps running.


def seconds(value: str) -> float:
    """A systemd time span as this unit writes it: plain seconds."""
    assert re.fullmatch(r"\d+", value), f"{value}: expected whole seconds"
    return float(value)


def test_serve_unit_gives_the_promised_stop_time_and_does_not_stop_retrying_on_a_missing_camera():
    unit = read_unit("edgeemo-serve.service")
    assert seconds(unit["Service"]["TimeoutStopSec"]) > STOP_WITHIN_S
    # No ExecStartPre or Requires on the camera device: a camera that enumerates late must not hold up the start.
    assert "ExecStartPre" not in unit["Service"] and "video" not in unit["Unit"].get("Requires", "")


def test_serve_unit_runs_camera_0_with_the_default_ports_and_only_video_devices():
    unit = read_unit("edgeemo-serve.service")
    args = parse_command(exec_start(unit))
    assert args.verb == "serve" and args.camera == ["0"]
    assert args.bind == DEFAULT_ENDPOINT and args.metrics_port == DEFAULT_METRICS_PORT
    check_endpoints_are_encrypted_beyond_loopback(args)
    service = unit["Service"]
    assert service["DeviceAllow"] == "char-video4linux rw"
    assert "video" in service["SupplementaryGroups"].split()
    # numba writes compiled code where the read-only system allows: the cache directory systemd makes.
    assert service["Environment"] == f"NUMBA_CACHE_DIR=/var/cache/{service['CacheDirectory']}/numba"
    assert "MemoryDenyWriteExecute" not in service  # numba and ONNX Runtime generate machine code


def test_per_core_template_holds_each_instance_to_its_core_and_publishes_through_the_relay():
    """edgeemo-serve@N.service: the instance's cameras from its own environment file, on core N only."""
    name = "edgeemo-serve@.service"
    service = read_unit(name)["Service"]
    assert service["CPUAffinity"] == "%i"  # systemd expands the instance name (checked with systemd-analyze verify)
    assert service["EnvironmentFile"] == "/etc/edgeemo/serve-%i.env"  # no "-": an instance without cameras fails
    base = parse_command(exec_start(read_unit(name)))
    assert base.verb == "serve" and port(base.connect) == PUBLISHERS_PORT and host(base.connect) == "127.0.0.1"
    # The header's example environment files: each a valid command line, the cameras and metrics ports apart.
    examples = re.findall(r"^#\s+/etc/edgeemo/serve-(\d+)\.env: EDGEEMO_SERVE_ARGS=(.+)$",
                          (DEPLOY / "systemd" / name).read_text(encoding="utf-8"), re.MULTILINE)
    assert [core for core, _ in examples] == ["0", "1"]
    parsed = [parse_command(exec_start(read_unit(name)) + shlex.split(args)) for _, args in examples]
    assert all(len(args.camera) == len(args.stream) == 2 for args in parsed)
    assert not set(parsed[0].camera) & set(parsed[1].camera)
    assert len({args.metrics_port for args in parsed}) == 2
    for args in parsed:
        check_endpoints_are_encrypted_beyond_loopback(args)


def test_relay_unit_listens_where_serve_and_subscribers_connect_by_default():
    args = parse_command(exec_start(read_unit("edgeemo-relay.service")))
    assert args.verb == "relay"
    assert port(args.publishers) == PUBLISHERS_PORT and port(args.subscribers) == PREDICTIONS_PORT
    check_endpoints_are_encrypted_beyond_loopback(args)


# --- container ----------------------------------------------------------------------------------------

def containerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines()]


def instruction(name: str) -> list[str]:
    return [args for kind, args in containerfile() if kind == name]


def test_container_is_a_slim_python_the_package_supports_without_tensorflow():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (base,) = instruction("FROM")
    version = re.fullmatch(r"python:(3\.\d+)-slim", base)
    assert version, base
    assert version.group(1) in {"3.10", "3.11", "3.12"} and project["requires-python"] == ">=3.10,<3.13"
    installs = [run for run in instruction("RUN") if "pip install" in run]
    assert len(installs) == 1 and "pip install '.[cpu]'" in installs[0]
    assert not re.search(r"offline|gpu|tensorflow", installs[0].split("&&")[0])
    runtime = project["dependencies"] + project["optional-dependencies"]["cpu"]
    assert not [d for d in runtime if re.match(r"(tensorflow|tf2onnx|keras)\b", d)]
    for copy in instruction("COPY"):
        for source in copy.split()[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    (user,) = instruction("USER")
    assert user not in ("root", "0")


def test_container_command_parses_and_exposes_the_ports_it_uses():
    (entrypoint,) = instruction("ENTRYPOINT")
    (cmd,) = instruction("CMD")
    assert json.loads(entrypoint) == ["edgeemo"]
    args = parse_command(json.loads(cmd))
    assert args.verb == "serve" and args.camera == ["0"]
    (exposed,) = instruction("EXPOSE")
    assert {int(p) for p in exposed.split()} == {port(args.bind), args.metrics_port}
    assert port(args.bind) == PREDICTIONS_PORT and args.metrics_port == DEFAULT_METRICS_PORT
    assert args.metrics_host == "0.0.0.0"  # reachable from outside the container
    check_endpoints_are_encrypted_beyond_loopback(args)
    (healthcheck,) = instruction("HEALTHCHECK")
    # Liveness, not /metrics (answered even when the loop is stuck) nor /readyz (a missing camera is no reason
    # to call the container unhealthy).
    assert f"http://127.0.0.1:{DEFAULT_METRICS_PORT}{LIVENESS_PATH}" in healthcheck
    start_period = re.search(r"--start-period=(\d+)s", healthcheck)
    assert start_period and int(start_period.group(1)) <= DEFAULT_START_GRACE_S


# --- Kubernetes ---------------------------------------------------------------------------------------

def manifests() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def of_kind(kind: str) -> list[dict]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def container_args(container: dict) -> list[str]:
    """The container's arguments with Kubernetes' $(VAR) references to its own env filled in."""
    env = {item["name"] for item in container.get("env", [])}
    args = []
    for arg in container["args"]:
        for name in re.findall(r"\$\((\w+)\)", arg):
            assert name in env, f"$({name}) is not in the container's env"
        args.append(re.sub(r"\$\((\w+)\)", "node-1", arg))
    return args


def workloads() -> dict[str, tuple[dict, dict, object]]:
    """verb -> (workload, its one container, the parsed command line)."""
    found = {}
    for workload in of_kind("DaemonSet") + of_kind("Deployment"):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        args = parse_command(container_args(container))
        found[args.verb] = (workload, container, args)
    return found


def container_ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def test_every_workload_selects_its_own_pods_and_services_select_workloads():
    pods = []
    for workload in of_kind("DaemonSet") + of_kind("Deployment"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        pods.append((workload, labels))
    for service in of_kind("Service"):
        selected = [w for w, labels in pods if service["spec"]["selector"].items() <= labels.items()]
        assert len(selected) == 1, service["metadata"]["name"]
        (container,) = selected[0]["spec"]["template"]["spec"]["containers"]
        for service_port in service["spec"]["ports"]:
            assert container_ports(container)[service_port["targetPort"]] == service_port["port"]
    namespaces = {doc["metadata"]["name"] for doc in of_kind("Namespace")}
    assert {doc["metadata"].get("namespace") for doc in manifests() if doc["kind"] != "Namespace"} == namespaces


def test_daemonset_serves_the_nodes_camera_with_metrics_on_the_exposed_port():
    workload, container, args = workloads()["serve"]
    assert workload["kind"] == "DaemonSet" and workload["spec"]["template"]["spec"]["nodeSelector"]
    assert args.camera == ["0"]
    pod = workload["spec"]["template"]["spec"]
    camera = [v for v in pod["volumes"] if v.get("hostPath", {}).get("path") == "/dev/video0"]
    assert camera and camera[0]["hostPath"]["type"] == "CharDevice"
    assert {"name": camera[0]["name"], "mountPath": "/dev/video0"} in container["volumeMounts"]
    assert args.metrics_port == DEFAULT_METRICS_PORT == container_ports(container)["metrics"]
    assert args.metrics_host == "0.0.0.0"
    (metrics_service,) = [s for s in of_kind("Service") if s["metadata"]["name"] == "edgeemo-serve-metrics"]
    assert [p["port"] for p in metrics_service["spec"]["ports"]] == [DEFAULT_METRICS_PORT]
    assert container["readinessProbe"]["httpGet"] == {"path": READINESS_PATH, "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": LIVENESS_PATH, "port": "metrics"}
    assert pod["terminationGracePeriodSeconds"] > STOP_WITHIN_S


def test_serve_pods_publish_through_the_relay_service_encrypted_with_mounted_keys():
    found = workloads()
    _, serve_container, serve = found["serve"]
    relay_workload, relay_container, relay = found["relay"]
    (relay_service,) = [s for s in of_kind("Service") if s["metadata"]["name"] == host(serve.connect)]
    by_name = {p["name"]: p["port"] for p in relay_service["spec"]["ports"]}
    assert port(serve.connect) == by_name["publishers"] == port(relay.publishers) == PUBLISHERS_PORT
    assert by_name["subscribers"] == port(relay.subscribers) == PREDICTIONS_PORT
    assert container_ports(relay_container) == {"publishers": port(relay.publishers),
                                                "subscribers": port(relay.subscribers)}
    for workload, container, args in (found["serve"], found["relay"]):
        check_endpoints_are_encrypted_beyond_loopback(args)
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        keys = volumes[mounts[str(args.curve_keys)]]
        assert "secret" in keys and keys["secret"]["defaultMode"] & 0o007 == 0  # edgeemo.keys refuses others' access


# --- Prometheus and Grafana ---------------------------------------------------------------------------

def test_prometheus_scrapes_the_metrics_port_and_the_metrics_service():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    static = [t for c in jobs["edgeemo-serve"]["static_configs"] for t in c["targets"]]
    assert static and all(int(t.rsplit(":", 1)[1]) == DEFAULT_METRICS_PORT for t in static)
    (keep,) = [r for r in jobs["edgeemo-serve-kubernetes"]["relabel_configs"] if r.get("action") == "keep"]
    service_name, port_name = keep["regex"].split(";")
    (service,) = [s for s in of_kind("Service") if s["metadata"]["name"] == service_name]
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [(port_name, DEFAULT_METRICS_PORT)]
    (sd,) = jobs["edgeemo-serve-kubernetes"]["kubernetes_sd_configs"]
    assert sd["namespaces"]["names"] == [service["metadata"]["namespace"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "edgeemo-dashboard.json").read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_dashboard_queries_only_metrics_and_labels_the_code_registers():
    samples, _ = registered_metrics()
    for expr in dashboard_exprs():
        used = re.findall(r"\bedgeemo_\w+", expr)
        assert used, expr
        for name in used:
            assert name in samples, f"{name} is not a metric edgeemo serves: {expr}"
        labels = set().union(*(samples[name] for name in used)) | {"le", "instance"}
        for grouping in re.findall(r"by \(([^)]*)\)", expr):
            assert {label.strip() for label in grouping.split(",")} <= labels, expr
        for selector in re.findall(r"\{([^}]*)\}", expr):
            assert {m.split("=")[0].strip() for m in selector.split(",")} <= labels, expr
        for stage in re.findall(r'stage=~?"([^"]*)"', expr):
            assert set(stage.split("|")) <= set(LATENCY_STAGES), expr


def test_dashboard_shows_every_metric_and_latency_quantiles_per_stage_and_end_to_end():
    _, families = registered_metrics()
    exprs = "\n".join(dashboard_exprs())
    shown_as = {"counter": ("_total",), "histogram": ("_bucket",), "info": ("", "_info"), "gauge": ("",)}
    for family, kind in families.items():
        shown = {family + suffix for suffix in shown_as[kind]}
        assert any(re.search(rf"\b{name}\b", exprs) for name in shown), f"{family} is not on the dashboard"
    for histogram in ("edgeemo_stage_latency_seconds", "edgeemo_end_to_end_latency_seconds"):
        for quantile in ("0.5", "0.99"):
            assert re.search(rf"histogram_quantile\({quantile}, sum by \([^)]*\) \(rate\({histogram}_bucket", exprs)
