"""Training on several devices or machines with TensorFlow's own strategies.

``--strategy`` picks a ``tf.distribute`` strategy; the model, its optimiser
and its checkpoint are created in the strategy's scope and ``model.fit`` does
the rest. The global batch (``--batch-size``) is split evenly between the
replicas and their gradients are summed (all-reduce), so one step of N
replicas is one step of the single-device run on the same batch, except
that BatchNorm normalises each replica's share of it.

- ``default``: one device (TensorFlow's default strategy).
- ``mirrored``: every GPU of this machine (``MirroredStrategy``). Without a
  GPU, the CPU is split into two logical devices, so that the distributed
  path can be tried (and is tested) anywhere; it is not faster.
- ``multi-worker``: several machines (``MultiWorkerMirroredStrategy``), each
  running the same command with its own ``TF_CONFIG``::

      TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}' python cli.py train ...

  Worker 0 (the chief) writes the run directory; the other workers write
  their checkpoints to a temporary folder they delete at the end. Each
  worker reads a different part of the data. To resume, every worker needs
  to read the chief's run directory (a shared file system).
"""

import json
import os
import tempfile
from pathlib import Path

import tensorflow as tf

from bnnzoo.errors import UserError

STRATEGIES = ("default", "mirrored", "multi-worker")
LOGICAL_CPUS = 2  # "mirrored" on a machine without GPUs


def _split_cpu(count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:  # TensorFlow already initialised its devices
        raise UserError("--strategy mirrored must be chosen before TensorFlow starts "
                           "(CPU devices are already fixed).") from None


def cluster_spec() -> dict:
    """``TF_CONFIG``, checked: a cluster of workers and this process's task."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UserError("--strategy multi-worker reads the cluster from TF_CONFIG, which is not "
                         "set; see `python cli.py train --help`.")
    try:
        spec = json.loads(raw)
        workers = spec["cluster"]["worker"]
        task = spec["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise UserError('TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
                         '"task": {"type": "worker", "index": 0}}.') from None
    if task.get("type") not in ("worker", "chief") or not 0 <= index < len(workers):
        raise UserError(f"TF_CONFIG's task {task} is not one of its {len(workers)} workers.")
    return spec


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        _split_cpu(LOGICAL_CPUS)
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")][:LOGICAL_CPUS]
        print(f"No GPU: mirroring over {len(cpus)} logical CPU devices (a check of the "
              "distributed path, not a speed-up).")
        return tf.distribute.MirroredStrategy(cpus)
    if name == "multi-worker":
        cluster_spec()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"Unknown strategy {name!r}. Strategies: {', '.join(STRATEGIES)}.")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (always, but on workers 1, 2, ...)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def worker_folder(run_dir: Path) -> Path:
    """Where a non-chief worker writes what the chief writes to ``run_dir``."""
    return Path(tempfile.mkdtemp(prefix=f"{Path(run_dir).name}-worker-"))
