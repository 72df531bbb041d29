"""``--distribute``: train and evaluate under a ``tf.distribute`` strategy.

* ``none`` (default): TensorFlow's default strategy, one device.
* ``mirrored``: ``MirroredStrategy`` over every GPU of this machine (all logical CPU devices when
  there is no GPU, which is how the tests run it): variables are mirrored, each batch is split
  over the replicas and gradients are summed across them.
* ``multi-worker``: ``MultiWorkerMirroredStrategy`` over several hosts, each described by the
  ``TF_CONFIG`` environment variable (``{"cluster": {"worker": ["host1:port", ...]}, "task":
  {"type": "worker", "index": i}}``). Every host runs the same octreport command on the same
  data; the chief (worker 0, or the task of type ``chief``) writes the run folder or the model,
  the other workers write into a temporary folder that is removed when they finish.

The whole run happens inside ``strategy.scope()``, so the model is built (or loaded) with
mirrored variables and ``Model.fit`` splits its batches; evaluation and the layer audit split
theirs over the replicas too (:mod:`octreport.engine.streaming`). Everything else (Grad-CAM,
feature maps, figures, the report) runs as without a strategy. ``--batch-size`` stays the global
batch. Batch normalisation computes its batch statistics per replica, so a model trained on
several replicas is not bit-for-bit the one trained on one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from octreport.errors import ConfigError

log = logging.getLogger(__name__)

TF_CONFIG_HELP = (
    'Set TF_CONFIG on every host, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}} (index 1 on the second host), or use --distribute mirrored '
    "for the GPUs of one machine."
)


def check_tf_config(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The parsed ``TF_CONFIG`` of a multi-worker run, or a ConfigError saying what is wrong."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        raise ConfigError(f"--distribute multi-worker needs the TF_CONFIG environment variable. {TF_CONFIG_HELP}")
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        members = cluster[task["type"]]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG is not a valid cluster description ({error!r}). {TF_CONFIG_HELP}") from None
    if not 0 <= index < len(members):
        raise ConfigError(f"TF_CONFIG task index {index} is not in its cluster's {task['type']} list. {TF_CONFIG_HELP}")
    return config


def make_strategy(mode: str) -> Any:
    """The strategy for ``mode`` (see the module docstring); None for ``none``.

    One strategy per mode and process: two strategies over the same devices would number their
    collective operations alike and clash (and TensorFlow allows one multi-worker strategy per
    process), so later runs in the same process (``octreport.make_report`` in a loop) reuse it.
    """
    if mode == "none":
        return None
    if mode not in _STRATEGIES:
        _STRATEGIES[mode] = _new_strategy(mode)
    return _STRATEGIES[mode]


_STRATEGIES: dict[str, Any] = {}


def _new_strategy(mode: str) -> Any:
    import tensorflow as tf

    if mode == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
        if len(devices) == 1:
            log.warning("--distribute mirrored found one device (%s): it runs, but nothing is shared out.", devices[0].name)
    elif mode == "multi-worker":
        check_tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise ConfigError(f"Unknown --distribute mode '{mode}'. Choose none, mirrored or multi-worker.")
    return strategy


def is_chief(strategy: Any) -> bool:
    """Whether this process writes the results: always, except on non-chief multi-worker tasks."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in cluster)


@contextmanager
def distributed(mode: str) -> Iterator[Any]:
    """Run the body inside the scope of ``mode``'s strategy (nothing for ``none``); yields it."""
    strategy = make_strategy(mode)
    if strategy is None:
        yield None
        return
    log.info("distributing over %d replica(s) with %s", strategy.num_replicas_in_sync, type(strategy).__name__)
    with strategy.scope():
        yield strategy


@contextmanager
def output_root(strategy: Any, wanted: Path) -> Iterator[Path]:
    """``wanted`` for the chief; for another multi-worker task a temporary folder, removed after,
    so that only the chief's results are kept."""
    if is_chief(strategy):
        yield wanted
        return
    scratch = Path(tempfile.mkdtemp(prefix="octreport-worker-"))
    log.info("this is not the chief worker: its copy of the results goes to %s and is removed; "
             "the chief writes them to %s", scratch, wanted)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
