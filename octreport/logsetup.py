"""Logging for the command line: octreport's own messages to stderr, TensorFlow's noise silenced."""

from __future__ import annotations

import logging
import os
import sys


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
