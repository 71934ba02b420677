"""Keras model -> LCE flatbuffer, with larq-compute-engine's converter.

LCE's converter turns every larq convolution whose input and kernel are both
1-bit into ``LceBconv2d`` (bitpacked operands, XNOR + popcount), folds the
following BatchNorm (and a magnitude-aware weight scale) into its output
multiplier and bias, and inserts ``LceQuantize`` where a real tensor enters a
binary convolution.

The model reaches the converter as a SavedModel holding one function, the
model's inference call, under the signature and output names Keras would give
it. LCE's own ``convert_keras_model`` saves the whole Keras object instead,
which traces every layer's call again in each mode (~5x the time of the
conversion itself: bireal18 at 14 px, 29 s against 6 s on 2 cores) for
functions the converter never reads; the flatbuffers are byte-identical.
Binary kernels too large for the converter's constant folding are quantized
first (``large_kernels``), so they are bitpacked too.
"""

import tempfile

import larq_compute_engine as lce
import tensorflow as tf

from bnnzoo.errors import UserError
from bnnzoo.quantizers.int8 import exporting

from .flatbuffer import io_types
from .large_kernels import quantize_large_kernels


class ConversionError(UserError):
    """LCE's converter rejected the model."""


#: Our targets -> LCE's converter target, and who runs them.
TARGETS: dict[str, str] = {
    "arm64": "arm",   # Android phones, 64-bit Raspberry Pi OS: LCE's optimised kernels
    "armv7": "arm",   # 32-bit Raspberry Pi OS: same flatbuffer, no optimised binary kernels
    "xcore": "xcore",  # XMOS xcore.ai
}

TARGET_NOTES: dict[str, str] = {
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
    quantization-aware training); for any other model this raises ``UserError``
    instead of silently returning float32 I/O.
    """
    if target not in TARGETS:
        raise UserError(f"Unknown target {target!r}. Targets: {', '.join(TARGETS)}.")
    io_type = tf.int8 if int8_io else tf.float32
    if model.dtype_policy.name != "float32":  # as LCE's convert_keras_model refuses them
        raise ConversionError(f"{model.name} computes in {model.dtype_policy.name}; the "
                              "converter takes float32 models.")
    model, _ = quantize_large_kernels(model)  # kernels the converter cannot fold
    try:
        with tempfile.TemporaryDirectory() as saved_model:
            save_inference_function(model, saved_model)
            buf = lce.convert_saved_model(saved_model, inference_input_type=io_type,
                                          inference_output_type=io_type, target=TARGETS[target])
    except Exception as err:  # noqa: BLE001  (the converter raises many kinds)
        if int8_io and "not integer quantized" in str(err):
            raise UserError(INT8_IO_NEEDS_STATISTICS) from err
        last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
        raise ConversionError(f"LCE could not convert {model.name}: {last[0]}") from err
    if int8_io and io_types(buf) != (["INT8"], ["INT8"]):
        raise UserError(INT8_IO_NEEDS_STATISTICS)
    return bytes(buf)


INT8_IO_NEEDS_STATISTICS = (
    "int8 input/output needs a model with int8 quantization statistics (trained with fake "
    "quantization); LCE keeps float32 I/O for this model. Export without --int8-io.")


def save_inference_function(model: tf.keras.Model, folder: str) -> None:
    """``model(x, training=False)`` as the SavedModel's ``serving_default``
    signature, inputs and outputs named as Keras's own SavedModel names them."""
    specs = [tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=name)
             for tensor, name in zip(model.inputs, model.input_names)]

    def call(*inputs):
        outputs = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(model.output_names, outputs))

    serve = tf.function(call, input_signature=specs)
    holder = tf.Module()
    holder.variables_ = list(model.variables)  # what the function reads
    holder.serve = serve
    with exporting():  # int8 ranges as the plain fake-quant op the converter reads
        tf.saved_model.save(holder, folder, signatures=serve)
