"""Training jobs on Ray workers: the same results as in one process, resuming, and a bad --ray-address."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from edgeemo.cli import main
from edgeemo.face import N_LANDMARKS
from offline.training.model import ARCHS
from offline.training.run_folder import Job, RunFolder
from tests.test_train import dataset, dataset_file  # noqa: F401 (fixtures: the toy dataset and its file)

pytestmark = [pytest.mark.offline, pytest.mark.slow]

# Both networks and both SVMs for one emotion: four quick jobs, TensorFlow on one thread each.
RUN = ["--quick", "--emotions", "anger", "--threads", "1"]


@pytest.fixture(scope="module")
def serial_run(dataset_file, tmp_path_factory) -> RunFolder:  # noqa: F811
    """The run with every job in one process: a fresh one, whose TensorFlow pools have the jobs' one
    thread whatever earlier tests set in this one."""
    run = RunFolder(tmp_path_factory.mktemp("serial") / "run")
    subprocess.run([sys.executable, "-m", "edgeemo", "train", "--data", str(dataset_file), "--out", str(run.root),
                    "--workers", "1", *RUN], check=True, capture_output=True)
    return run


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray session the caller holds, as a notebook user would have one."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def assert_same_outputs(run: RunFolder, reference: RunFolder, jobs: list[Job]) -> None:
    for job in jobs:
        expected, got = reference.read_predictions(job), run.read_predictions(job)
        assert sorted(got) == sorted(expected)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{job}: {key}")
        assert run.read_result(job)["metrics"] == reference.read_result(job)["metrics"], job
        assert run.model_path(job).is_file() == (job.model in ARCHS)
        if job.model in ARCHS:
            for mine, theirs in zip(run.load_model(job).get_weights(), reference.load_model(job).get_weights()):
                np.testing.assert_array_equal(mine, theirs, err_msg=f"{job}: weights")


def test_two_local_ray_workers_give_the_results_of_one_process(serial_run, dataset_file, tmp_path,  # noqa: F811
                                                                capsys):
    import ray

    run = RunFolder(tmp_path / "run")
    assert main(["train", "--data", str(dataset_file), "--out", str(run.root), "--workers", "2", *RUN]) == 0
    assert "4 models trained, 0 already done" in capsys.readouterr().out
    assert run.finished_jobs() == serial_run.finished_jobs()
    assert_same_outputs(run, serial_run, run.finished_jobs())
    assert not ray.is_initialized()  # the run started its own Ray and stopped it


def test_a_run_resumed_on_ray_trains_only_its_missing_jobs(serial_run, dataset_file, tmp_path, capsys,  # noqa: F811
                                                           ray_session):
    shutil.copytree(serial_run.root, tmp_path / "run")
    run = RunFolder(tmp_path / "run")
    missing = [Job("r-emo", N_LANDMARKS, "anger", 0), Job("svm-rbf", N_LANDMARKS, "anger", 0)]
    for job in missing:
        run.result_path(job).unlink()
    stamps = {job: run.result_path(job).stat().st_mtime_ns for job in run.finished_jobs()}

    assert main(["train", "--data", str(dataset_file), "--out", str(run.root), "--workers", "2", *RUN]) == 0
    assert "2 models trained, 2 already done" in capsys.readouterr().out
    assert {job: run.result_path(job).stat().st_mtime_ns for job in stamps} == stamps
    assert sorted(run.finished_jobs()) == sorted([*stamps, *missing])
    assert_same_outputs(run, serial_run, missing)
    assert ray_session.is_initialized()  # the caller's session is left running


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("address, named", [
    (f"127.0.0.1:{_closed_port()}", "cannot reach a Ray cluster there"),
    ("headnode", "expected HOST:PORT"),
], ids=["nothing-listening", "no-port"])
def test_a_bad_ray_address_is_one_line_naming_the_flag(address, named, dataset_file, tmp_path, capsys):  # noqa: F811
    argv = ["train", "--data", str(dataset_file), "--out", str(tmp_path / "run"), "--ray-address", address, *RUN]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"edgeemo: error: --ray-address {address}: {named}") and error.count("\n") == 1
