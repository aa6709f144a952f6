"""``edgeemo bench --quick``: every file written, with the structure people and scripts read. Timings are
checked for sense (positive, p99 at least the median), never against a limit."""

import json
import subprocess
import sys

import pytest

from edgeemo.benchmark.classifier import ARCHS, KS

MACHINE_KEYS = ("cpu", "cores", "ram_gb", "os", "python", "onnxruntime", "mediapipe")
STAGES = ("capture", "wait", "landmarks", "classify", "publish", "total")


def check_stats(stats: dict, where: str) -> None:
    assert stats["n"] >= 1, where
    assert stats["median_ms"] > 0, where
    assert stats["p99_ms"] >= stats["median_ms"], where


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run([sys.executable, "-m", "edgeemo", "bench", "--quick", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout.split()


@pytest.mark.offline
def test_quick_bench_writes_json_markdown_and_png_for_both_benchmarks(results):
    out, printed = results
    names = [f"{name}.{suffix}" for name in ("classifier_latency", "end_to_end", "streaming_classifier")
             for suffix in ("json", "md", "png")]
    assert printed == [str(out / name) for name in names]
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.offline
def test_classifier_latency_has_every_k_and_architecture_and_the_machine(results):
    out, _ = results
    data = json.loads((out / "classifier_latency.json").read_text())
    assert data["quick"] is True
    for key in MACHINE_KEYS:
        assert data["machine"][key], key
    rows = {(row["k"], row["arch"]): row for row in data["rows"]}
    assert sorted(rows) == sorted((k, arch) for k in KS for arch in ARCHS.values())
    assert len(data["rows"]) == len(rows)
    for key, row in rows.items():
        check_stats(row, str(key))
    table = (out / "classifier_latency.md").read_text()
    for k in KS:
        assert f"\n| {k} | " in table


@pytest.mark.offline
def test_streaming_classifier_compares_both_paths_for_the_default_bundle_and_every_k(results):
    out, _ = results
    data = json.loads((out / "streaming_classifier.json").read_text())
    assert [row["name"] for row in data["rows"]] == ["default bundle", *(f"K={k} T-EMO" for k in KS)]
    for row in data["rows"]:
        for part in ("old", "streaming", "encoder", "head"):
            check_stats(row[part], f"{row['name']} {part}")
        assert row["parity_max_abs_difference"] <= 1e-4
        assert {row["frame_encoder"], row["window_head"]} <= {"compiled", "onnxruntime"}
    assert data["mediapipe_detect_ms"] > 0
    table = (out / "streaming_classifier.md").read_text()
    assert f"Graphs: {data['graphs']};" in table and "{" not in table  # every field filled in
    for row in data["rows"]:
        assert f"| {row['name']} | " in table
        assert f" | {row['frame_encoder']} | {row['encoder']['median_ms']:.3f} | {row['window_head']} | " in table
    e2e = json.loads((out / "end_to_end.json").read_text())
    assert e2e["pipeline"]["classifier"] == "streaming pair"
    assert e2e["pipeline_per_emotion"]["classifier"] == "six per-emotion models"


@pytest.mark.offline
def test_end_to_end_has_every_stage_the_frame_rate_and_the_mediapipe_floor(results):
    out, _ = results
    data = json.loads((out / "end_to_end.json").read_text())
    for key in MACHINE_KEYS:
        assert data["machine"][key], key
    assert "bundle" in data["bundle_source"]
    pipeline = data["pipeline"]
    assert sorted(pipeline["stages"]) == sorted(STAGES)
    for stage, stats in pipeline["stages"].items():
        if stage != "wait":  # handing a frame straight to processing may take less than the clock resolves
            check_stats(stats, stage)
    assert pipeline["predictions"] >= 1 and pipeline["frames"] >= pipeline["predictions"]
    assert pipeline["frames_per_second"] > 0
    check_stats(data["mediapipe_floor"]["detect"], "mediapipe")
    assert data["mediapipe_floor"]["frames_per_second"] > 0
    alternating = data["alternating"]
    assert len(alternating["blocks"]) >= 1
    for block in alternating["blocks"]:
        assert block["p50_ratio"] == pytest.approx(block["total_median_ms"] / block["mediapipe_median_ms"], rel=1e-3)
    assert alternating["p50_ratio_min"] <= alternating["p50_ratio_median"] <= alternating["p50_ratio_max"]
    assert "Alternating, " in (out / "end_to_end.md").read_text()


_WITHOUT_OFFLINE_EXTRA = """
import sys
class Missing:  # as on a device installed without edgeemo[offline]
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "keras", "tf2onnx"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
from edgeemo.cli import main
sys.exit(main(["bench", "--quick", "--out", sys.argv[1]]))
"""


def test_bench_without_the_offline_extra_builds_its_graphs_with_onnx_and_times_every_k(tmp_path):
    # The edge box, where users measure latency: no TensorFlow (matplotlib comes with mediapipe).
    result = subprocess.run([sys.executable, "-c", _WITHOUT_OFFLINE_EXTRA, str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{name}.{suffix}" for name in ("classifier_latency", "end_to_end", "streaming_classifier")
        for suffix in ("json", "md", "png"))
    data = json.loads((tmp_path / "streaming_classifier.json").read_text())
    assert "built with onnx" in data["graphs"]
    assert {row["name"] for row in data["rows"]} >= {f"K={k} T-EMO" for k in KS}
    for row in data["rows"]:
        assert row["parity_max_abs_difference"] <= 1e-4
        check_stats(row["old"], row["name"])
        check_stats(row["streaming"], row["name"])


def test_the_explanations_benchmark_refuses_a_bundle_without_calibrated_models(capsys, tmp_path):
    from edgeemo.benchmark.explanations import main
    from edgeemo.info import ABSOLUTE_BUNDLE

    with pytest.raises(SystemExit) as exit_info:
        main(["--models", "calibrated", "--model", str(ABSOLUTE_BUNDLE), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("explanations: error: --model ") and "not a calibrated bundle" in error
    assert "\n" not in error and not any(tmp_path.iterdir())


def test_a_benchmark_writes_its_record_and_figure_or_says_bad_input_in_one_line(tmp_path, capsys):
    from edgeemo.benchmark.report import record_or_exit
    from edgeemo.errors import EdgeemoError

    def figure(result, path):
        path.write_text(f"figure of {result['value']}")

    record_or_exit("demo", tmp_path, lambda: {"value": 3}, lambda r: f"# value {r['value']}\n", figure)
    assert json.loads((tmp_path / "demo.json").read_text()) == {"value": 3}
    assert (tmp_path / "demo.md").read_text() == "# value 3\n" and (tmp_path / "demo.png").exists()
    assert "# value 3" in capsys.readouterr().out

    def bad():
        raise EdgeemoError("/nowhere: no such model bundle folder")

    with pytest.raises(SystemExit) as exit_info:
        record_or_exit("other", tmp_path, bad, str, figure)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "other: error: /nowhere: no such model bundle folder"
    assert not (tmp_path / "other.json").exists()
