"""The recorded soak (bench/results/soak.json, from ``python -m edgeemo.benchmark.soak``) meets issue 17's
targets, and its report is what the writer makes of that record. Running the soak itself takes 12 minutes:
it is a benchmark, not a test."""

from __future__ import annotations

import json
from pathlib import Path

from edgeemo.benchmark.soak import write

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def record() -> dict:
    return json.loads((RESULTS / "soak.json").read_text(encoding="utf-8"))


def test_the_recorded_soak_meets_the_targets():
    result = record()
    soak = result["soak"]
    assert result["minutes"] >= 10
    assert soak["rss_growth_pct_after_warm_up"] < 5
    assert soak["sequence_gaps"] == 0 and soak["predictions_received"] > 0
    assert soak["healthz_failures"] == 0
    faults = result["faults"]
    assert len(faults) == 4
    for fault in faults:
        assert fault["reported"] and fault["recovered"], fault["fault"]
    (sigterm,) = [f for f in faults if f["fault"].startswith("SIGTERM")]
    assert sigterm["exit_code"] == 0 and sigterm["seconds_to_exit"] < 2


def test_the_report_is_the_writers_rendering_of_the_record(tmp_path):
    paths = write(tmp_path, record())
    assert (tmp_path / "soak.md").read_text() == (RESULTS / "soak.md").read_text()
    assert {p.name for p in paths} >= {"soak.json", "soak.md"}
