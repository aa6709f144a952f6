"""TensorFlow, imported once, quietly, with its thread pools sized from the settings."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def tensorflow(threads: int = 0):
    """Import TensorFlow and size its intra- and inter-op pools (0 = all cores); returns the module.

    TensorFlow fixes its pools when it first runs an op, so only the first call in a process sets them;
    later calls keep what is set.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA probing logs its failures here, on a CPU-only machine
    tf.get_logger().setLevel("ERROR")  # e.g. retracing notes: each new model traces its own predict step
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already initialised by an earlier run in this process
    return tf


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    # TensorFlow 2.19 writes plugin-registration noise through absl before TF_CPP_MIN_LOG_LEVEL applies,
    # straight to file descriptor 2; Python exceptions are still raised, after stderr is restored.
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
