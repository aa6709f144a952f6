"""The capacity benchmark's per-core layout: streams dealt out to the cores, each process held to its core."""

import json
import os
import subprocess
import sys

import pytest

from edgeemo.benchmark.capacity import PINNED, _held_to, deal, processes_of


def test_streams_are_dealt_out_to_the_cores_evenly_and_no_core_gets_an_empty_process():
    streams = [f"s{i}" for i in range(5)]
    assert deal(streams, [0, 1]) == [(0, ["s0", "s2", "s4"]), (1, ["s1", "s3"])]
    assert deal(streams[:1], [0, 1, 2]) == [(0, ["s0"])]
    groups = deal(streams, [3, 5, 7])
    assert sorted(s for _, group in groups for s in group) == streams and [c for c, _ in groups] == [3, 5, 7]


def test_each_layout_starts_the_processes_it_names():
    streams = ["s0", "s1", "s2"]
    assert processes_of("one process", streams) == processes_of(PINNED, streams) == [(None, streams)]
    assert processes_of("one per stream", streams) == [(None, ["s0"]), (None, ["s1"]), (None, ["s2"])]
    assert processes_of("one per core", streams) == deal(streams, sorted(os.sched_getaffinity(0)))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_process_started_held_to_a_core_and_every_thread_it_starts_run_on_that_core_only():
    cpu = max(os.sched_getaffinity(0))
    code = ("import json, os, threading; seen = [];"
            "t = threading.Thread(target=lambda: seen.append(sorted(os.sched_getaffinity(0)))); t.start(); t.join();"
            "print(json.dumps([sorted(os.sched_getaffinity(0)), seen[0]]))")
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=_held_to(cpu), capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == [[cpu], [cpu]]
