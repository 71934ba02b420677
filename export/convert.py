"""Keras model -> LCE flatbuffer, with larq-compute-engine's converter.

LCE's converter turns every larq convolution whose input and kernel are both
1-bit into ``LceBconv2d`` (bitpacked operands, XNOR + popcount), folds the
following BatchNorm (and a magnitude-aware weight scale) into its output
multiplier and bias, and inserts ``LceQuantize`` where a real tensor enters a
binary convolution.
"""

from typing import Dict

import larq_compute_engine as lce
import tensorflow as tf

from .flatbuffer import io_types

class ConversionError(ValueError):
    """LCE's converter rejected the model."""


#: Our targets -> LCE's converter target, and who runs them.
TARGETS: Dict[str, str] = {
    "arm64": "arm",   # Android phones, 64-bit Raspberry Pi OS: LCE's optimised kernels
    "armv7": "arm",   # 32-bit Raspberry Pi OS: same flatbuffer, no optimised binary kernels
    "xcore": "xcore",  # XMOS xcore.ai
}

TARGET_NOTES: Dict[str, str] = {
    "armv7": ("LCE's fastest binary kernels (its aarch64 BGEMM) need a 64-bit OS: on "
              "32-bit Raspberry Pi OS this flatbuffer runs, but slower. For speed install the "
              "64-bit OS and use --target arm64 (the same flatbuffer)."),
    "xcore": ("xcore flatbuffers run on XMOS's xcore.ai runtime, which lce_benchmark_model "
              "does not cover; the parity check runs them through LCE's interpreter here."),
}


def export_flatbuffer(model: tf.keras.Model, target: str = "arm64", *,
                      int8_io: bool = False) -> bytes:
    """Convert ``model`` for ``target`` (one of :data:`TARGETS`) into flatbuffer bytes.

    ``int8_io=True`` asks for int8 input and output tensors. LCE gives them only
    to models that carry int8 quantization statistics (fake-quantization ops from
    quantization-aware training); for any other model this raises ``ValueError``
    instead of silently returning float32 I/O.
    """
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}. Targets: {', '.join(TARGETS)}.")
    io_type = tf.int8 if int8_io else tf.float32
    try:
        buf = lce.convert_keras_model(model, inference_input_type=io_type,
                                      inference_output_type=io_type, target=TARGETS[target])
    except Exception as err:  # noqa: BLE001  (the converter raises many kinds)
        last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
        raise ConversionError(f"LCE could not convert {model.name}: {last[0]}") from err
    if int8_io and io_types(buf) != (["INT8"], ["INT8"]):
        raise ValueError(
            "int8 input/output needs a model with int8 quantization statistics "
            "(trained with fake quantization); LCE keeps float32 I/O for this model. "
            "Export without --int8-io.")
    return bytes(buf)
