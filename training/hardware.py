r"""What this machine offers for training, read at run time, and the precision it gets.

The machines this project runs on change from one day to the next (a CPU
with AMX-BF16, one with AVX512-BF16 only, one with neither, a GPU), so the
numeric precision of a run is chosen by detection, never assumed:

* ``float32``: every layer computes and stores in float32;
* ``bfloat16``: Keras's ``mixed_bfloat16`` policy: variables (latent weights,
  BatchNorm statistics, optimiser slots) stay float32, layers compute in
  bfloat16. A binary convolution's operands are \(\pm 1\) (and
  \(\alpha_c \pm 1\)), exact in bfloat16's 8-bit mantissa; its integer sums
  are exact up to \(2^8\) and rounded to 8 bits above, like any bf16 matmul;
* ``float16``: Keras's ``mixed_float16`` (with its dynamic loss scaling);
* ``auto``: ``bfloat16`` where it is native (an Ampere or later GPU, or a CPU whose
  ``/proc/cpuinfo`` flags name ``amx_bf16`` or ``avx512_bf16``, which oneDNN
  uses), ``float32`` elsewhere: emulated bf16 is slower than float32.

A run's ``config.json`` records the precision it used; its ``model.h5`` is
always saved in float32 (``save_float32``: the function LCE converts).
"""

import contextlib
import json
import os
import platform
from typing import Optional

import tensorflow as tf

from bnnzoo import machine
from bnnzoo.errors import UserError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}


def _cpuinfo() -> dict:
    return machine.cpuinfo()


def cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set:
    return set(_cpuinfo().get("flags", "").split())


def gpus() -> list[str]:
    return [device.name for device in tf.config.list_physical_devices("GPU")]


def bf16_gpus() -> list[str]:
    """The GPUs with native bfloat16: compute capability 8.0 (Ampere) and later."""
    return [device.name for device in tf.config.list_physical_devices("GPU")
            if tuple(tf.config.experimental.get_device_details(device).get(
                "compute_capability") or (0, 0)) >= (8, 0)]


def native_bf16() -> list[str]:
    """What computes bfloat16 natively here: "GPU", "AMX-BF16", "AVX512-BF16"."""
    found = ["GPU"] if bf16_gpus() else []
    return found + [name for flag, name in BF16_FLAGS.items() if flag in cpu_flags()]


def resolve_precision(requested: str = "auto") -> str:
    """``requested``, or for ``auto`` the fastest exact-enough precision here."""
    if requested not in PRECISIONS:
        raise UserError(f"Unknown precision {requested!r}. Choices: {', '.join(PRECISIONS)}.")
    if requested != "auto":
        return requested
    return "bfloat16" if native_bf16() else "float32"


@contextlib.contextmanager
def precision_scope(precision: Optional[str]):
    """Layers built inside take ``precision``'s Keras policy; the global policy
    is restored afterwards (so one process can build models of both kinds)."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(POLICIES[resolve_precision(precision or "float32")])
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def save_float32(model: tf.keras.Model, path) -> None:
    """Save ``model`` as a Keras ``.h5`` file whose layers load in float32: what a
    mixed-precision run saves. Its variables are float32 already, so only the
    layer configurations' policies change (quantizers are layers too: their
    policies sit inside); no second model is built."""
    model.save(path, include_optimizer=False, save_format="h5")
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return

    def float32(config):
        if isinstance(config, dict):
            if config.get("class_name") == "Policy":
                return "float32"
            return {key: float32(value) for key, value in config.items()}
        return [float32(value) for value in config] if isinstance(config, list) else config

    import h5py

    with h5py.File(path, "r+") as saved:
        config = json.loads(saved.attrs["model_config"])
        saved.attrs["model_config"] = json.dumps(float32(config)).encode("utf8")


def describe() -> dict:
    """The machine, as results files and run configs record it."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
            "native_bf16": native_bf16(), "gpus": len(gpus())}
