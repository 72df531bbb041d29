"""Logging for the command line: octreport's own messages to stderr, TensorFlow's noise silenced."""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

RUNTIME_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]"  # absl: E0000 00:00:1796619640.14 15426 node_def_util.cc:682]
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "  # TensorFlow's older C++ logging
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
"""A line that TensorFlow's C++ runtime (absl, glog) writes to file descriptor 2."""


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter; must run before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def configure_logging(quiet: bool) -> None:
    """INFO and up on stderr, or only errors with ``quiet``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.ERROR if quiet else logging.INFO)
    package_logger = logging.getLogger("octreport")
    package_logger.handlers[:] = [handler]
    package_logger.setLevel(logging.INFO)
    package_logger.propagate = False
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices with stderr silenced at the file-descriptor level.

    TensorFlow's C++ runtime prints CUDA probing messages before any logging setting applies; on a
    CPU-only machine they read like errors. Python exceptions are not affected: they are raised
    after stderr is restored. When TensorFlow is already imported, only the device probe is
    silenced (the first probe is where CUDA's "failed call to cuInit" comes from).
    """
    first_import = "tensorflow" not in sys.modules
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    if first_import:
        # The 400,000 objects of TensorFlow's and Keras' modules live as long as the process: kept
        # out of the garbage collector's full passes, which otherwise walk them 8 times a report.
        gc.freeze()


@contextmanager
def runtime_log_dropped(active: bool = True) -> Iterator[None]:
    """With ``active`` (``--quiet``): while the block runs, file descriptor 2 goes to a temporary
    file; afterwards every line of it that is not a C++ runtime log line (:data:`RUNTIME_LOG_LINE`)
    is written to stderr. TensorFlow's C++ code writes to the descriptor directly, so neither
    ``TF_CPP_MIN_LOG_LEVEL`` nor Python's logging can silence lines such as ``E0000 ...
    node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool ...``. Anything else
    on stderr (a Python traceback, a message of another library) still reaches the user, after the
    block; octreport's own ``Error:`` line is printed after it, to the restored stderr.
    """
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not RUNTIME_LOG_LINE.match(line))
            if kept:
                os.write(2, kept.encode("utf-8"))
