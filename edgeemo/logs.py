"""What ``edgeemo serve`` writes to stderr: its own log lines, and not the start-up chatter of the libraries
it loads, unless ``--verbose``.

MediaPipe, TensorFlow (which MediaPipe imports when it is installed), TensorFlow Lite and OpenCV log from
C++ straight to file descriptor 2, before and regardless of Python's logging: dozens of lines at every
start (cuDNN factories registered twice, the XNNPACK delegate, OpenCV probing camera backends). Their
environment switches (GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL, OPENCV_LOG_LEVEL) silence part of it, and
not absl's "before absl::InitializeLog()" lines, so ``quiet_native_logs`` also puts a filter on fd 2: a
pipe read by a thread that drops lines in those libraries' log formats and passes everything else on
(a crash's message, a Python traceback written by C code). Python's own ``sys.stderr``, and so
edgeemo's log lines, write to the real stderr directly, not through the filter.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import re
import sys
import threading
import warnings

# Environment switches read by the libraries when they load; set only if the user has not set them.
QUIET_ENVIRONMENT = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3", "OPENCV_LOG_LEVEL": "ERROR"}

# Lines in the native libraries' log formats: glog/absl ("W0000 00:00:1796158712.313069 7721 file.cc:177] ...",
# where the clock is epoch seconds before absl is initialised), TensorFlow's own C++ format ("2026-12-01
# 22:12:48.754840: E external/local_xla/...cuda_fft.cc:467] ..."), absl's pre-init notice, TensorFlow Lite's
# "INFO: ...", OpenCV's "[ WARN:0@0.022] ...", FFmpeg's "[tcp @ 0x...] ...".
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [^\]]+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|(?:INFO|WARNING): (?:Created TensorFlow Lite|Initialized TensorFlow Lite)"
    rb"|\[ ?(?:WARN|INFO|DEBUG|ERROR|VERBOSE):\d+@"
    rb"|\[[\w -]+ @ 0x[0-9a-f]+\] )"
)
THIRD_PARTY_LOGGERS = ("absl", "tensorflow", "mediapipe", "numba", "h5py")

log = logging.getLogger("edgeemo")


def configure_logging(verbose: bool = False) -> None:
    """edgeemo's log lines on stderr (INFO and up; DEBUG with ``verbose``); third-party loggers at ERROR
    unless ``verbose``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    if not verbose:
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        # protobuf and MediaPipe warn about their own deprecations at import: nothing a user can act on.
        for module in ("google.protobuf", "mediapipe", "tensorflow", "keras"):
            warnings.filterwarnings("ignore", module=module)


def quiet_native_logs() -> None:
    """Set the libraries' environment switches and filter their log lines out of fd 2 (see the module
    docstring). Call once, early, before MediaPipe, TensorFlow or OpenCV load."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    sys.stderr.flush()
    real = os.dup(2)
    sys.stderr = open(real, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",  # noqa: SIM115 - for life
                      errors="backslashreplace", closefd=False)
    if faulthandler.is_enabled():  # its dump on a crash must not go through a thread that dies with it
        faulthandler.enable(sys.stderr)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    threading.Thread(target=_filter, args=(read_end, real), name="edgeemo-log-filter", daemon=True).start()


def _filter(read_end: int, real: int) -> None:
    with open(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line))
            if kept:
                os.write(real, kept)
        if pending and not NATIVE_LOG_LINE.match(pending):
            os.write(real, pending)
