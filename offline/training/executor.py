"""Running independent jobs: one after another in this process, or as Ray tasks on local worker processes
or on a cluster.

A job runs as ``task(shared, job, note)``: ``shared`` is what every job reads (e.g. the dataset), sent to
Ray's object store once, not once per job; ``note(**fields)`` shows a job's progress beside the bar (None
in a Ray worker, which has no bar). The task returns its outputs instead of writing them, and
``done(job, outputs)`` runs here, in the driver, as each job finishes: the run folder stays on this
machine, workers need no shared file system, and an interrupted run loses only the jobs that were running.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable, Sequence, TypeVar

from tqdm import tqdm

from edgeemo.errors import EdgeemoError

J = TypeVar("J")
Note = Callable[..., None] | None
PROBE_TIMEOUT_S = 5.0


class Executor:
    """Where jobs run: in this process (one worker, no address), on ``workers`` local Ray worker processes,
    or on the Ray cluster at ``address`` (HOST:PORT of its head). Each Ray task reserves ``cpus_per_job``
    CPUs. Ray starts (or connects) at the first job and stops at ``close()``, only if it was started here:
    a Ray session the caller already holds is used as it is."""

    def __init__(self, workers: int = 1, address: str | None = None, cpus_per_job: int = 1) -> None:
        if workers < 1:
            raise EdgeemoError(f"--workers {workers}: must be at least 1")
        self.workers, self.address, self.cpus_per_job = workers, address, cpus_per_job
        self._ray = None
        self._started_ray = False

    @property
    def in_process(self) -> bool:
        return self.workers == 1 and self.address is None

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    def run(self, task: Callable[[Any, J, Note], Any], shared: Any, jobs: Sequence[J],
            done: Callable[[J, Any], None], *, desc: str, unit: str, progress: bool = True) -> None:
        """Run every job; ``done`` gets each one's outputs as it finishes (in job order in this process)."""
        if not jobs:
            return
        if not self.in_process and self._ray is None:  # before the bar, so that a refusal is a line of its own
            self._ray, self._started_ray = _connect(self.workers * self.cpus_per_job, self.address)
        with tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress) as bar:
            if self._ray is None:
                _run_here(task, shared, jobs, done, bar, desc)
            else:
                _run_on_ray(self._ray, task, shared, jobs, done, bar, self.cpus_per_job)


def _run_here(task, shared, jobs, done, bar: tqdm, desc: str) -> None:
    for job in jobs:
        bar.set_description(f"{desc} {job}")
        done(job, task(shared, job, bar.set_postfix))
        bar.update()


def _run_on_ray(ray, task, shared, jobs, done, bar: tqdm, cpus_per_job: int) -> None:
    remote = ray.remote(num_cpus=cpus_per_job)(task)
    shared_ref = ray.put(shared)
    running = {remote.remote(shared_ref, job, None): job for job in jobs}
    try:
        while running:
            (ready,), _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ready)
            done(job, ray.get(ready))
            bar.set_postfix_str(f"finished {job}")
            bar.update()
    finally:  # interrupted or failed: stop the rest, so a cluster does not go on training for nobody
        for ref in running:
            ray.cancel(ref)


def _connect(cpus: int, address: str | None):
    """Ray, started here with ``cpus`` CPUs or connected to ``address``; and whether this call started it."""
    flag = "--workers" if address is None else "--ray-address"
    try:
        import ray
    except ModuleNotFoundError:
        raise EdgeemoError(f"{flag}: Ray is not installed: pip install 'edgeemo[offline]', "
                           "or run the jobs in this process with --workers 1") from None
    if address is not None:
        _probe(address)
    if ray.is_initialized():
        return ray, False
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR)  # workers' TensorFlow chatter stays in Ray's logs
    if address is None:
        ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
    else:
        ray.init(address=address, **quiet)
    return ray, True


def _probe(address: str) -> None:
    """Fail at once when nothing listens at the address: Ray itself retries for many minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EdgeemoError(f"--ray-address {address}: expected HOST:PORT of the cluster's head, e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise EdgeemoError(f"--ray-address {address}: cannot reach a Ray cluster there ({exc.strerror or exc}); "
                           "start one with 'ray start --head'") from None
