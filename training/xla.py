"""Whether a run compiles its training step with XLA: measured here, not assumed.

XLA fuses a step's element-wise work into fewer kernels, but on a CPU it also
replaces oneDNN's convolutions with its own, and which wins depends on the
model, the input size, the precision and the processor (measured on one Xeon:
XLA made a 28 px small-image net 2x slower and helped nets with the ImageNet
stem at small inputs). So ``--xla auto`` times a few training steps of the
run's own model, input shape, batch and precision with and without XLA, on
random inputs, and keeps XLA only if it takes at most 95 % of the plain step
(a tie in noisy timings is no reason to compile). The verdict is cached per
device (CPU model, flags and cores), model, width, shape, batch, precision and
TensorFlow version in ``$XDG_CACHE_HOME/bnnzoo/xla.json`` (``~/.cache`` by
default), so only the first run of a kind pays for the probe (about four
steps and one XLA compilation per side). Distributed runs are not probed:
their workers must agree, so ``auto`` is off there.
"""

import hashlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from bnnzoo import atomic
from bnnzoo.errors import UserError

from . import hardware

CHOICES = ("auto", "on", "off")
MARGIN = 0.95  # XLA must take at most this fraction of the plain step: timing noise is no win


def cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "bnnzoo" / "xla.json"


def probe_key(model_name: str, width, input_shape, batch_size: int, precision: str) -> str:
    flags = hashlib.sha256(" ".join(sorted(hardware.cpu_flags())).encode()).hexdigest()[:8]
    device = "+".join(hardware.gpus()) or f"{hardware.cpu_name()} flags={flags} cores={os.cpu_count()}"
    shape = "x".join(str(int(d)) for d in input_shape)
    return (f"{device}|{model_name}|width={width}|{shape}|batch={batch_size}|{precision}|"
            f"tf={tf.__version__}")


def seconds_per_step(model: tf.keras.Model, batch_size: int, steps: int = 3,
                     warmup: int = 1) -> float:
    """Median wall time of ``steps`` training steps on random data, after ``warmup``
    (the first step traces and compiles)."""
    rng = np.random.default_rng(0)
    shape = (batch_size, *model.input_shape[1:])
    x = tf.constant(rng.standard_normal(shape, dtype=np.float32))
    classes = int(model.output_shape[-1])
    y = tf.one_hot(rng.integers(0, classes, batch_size), classes)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def choose(requested: str, key: str, compiled_model: Callable[[bool], tf.keras.Model],
           batch_size: int) -> tuple[bool, str]:
    """(use XLA, why) for ``requested`` in ``on | off | auto``.

    ``compiled_model(jit_compile)`` builds and compiles a fresh copy of the
    run's model: the probe never touches the model that will be trained.
    """
    if requested not in CHOICES:
        raise UserError(f"Unknown --xla {requested!r}. Choices: {', '.join(CHOICES)}.")
    if requested != "auto":
        return requested == "on", f"--xla {requested}"
    cache = cache_path()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if key not in known:
        timed = {}
        for jit in (False, True):
            timed["xla" if jit else "plain"] = seconds_per_step(compiled_model(jit), batch_size)
        known[key] = timed
        try:
            atomic.write_json(cache, known)
        except OSError:
            pass  # a read-only home: the probe runs again next time
    timed = known[key]
    use = timed["xla"] < MARGIN * timed["plain"]
    return use, (f"auto: a training step took {timed['xla']:.3g} s with XLA and "
                 f"{timed['plain']:.3g} s without on this machine")
