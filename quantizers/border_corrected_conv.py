r"""larq's ``QuantConv2D`` with its constant padding computed without padding the batch.

A "same" convolution whose borders hold a constant \(v\) (larq's
``pad_values``: 1.0 in binary nets, whose activations have no 0) is, because a
convolution is linear in its input,
\[ \operatorname{pad}_v(x) \circledast W \;=\; \operatorname{pad}_0(x) \circledast W
   \;+\; \operatorname{pad}_v(0) \circledast W , \]
and the second term depends on the kernel and the input's spatial shape only:
one convolution of a bordered zero image at batch size 1, broadcast over the
batch. larq computes the left side with an explicit ``tf.pad`` of the whole
batch before every convolution, a copy of every activation forward and a
slice of every gradient backward; in a training step this layer computes the
right side instead (``"same"`` zero padding is native to the convolution), the
same function and the same gradients up to float rounding order, the kernel's
gradient included (the border term depends on it).

In inference (evaluation, prediction, export) it runs larq's own path, so the
graph LCE's converter reads has the ``Pad`` it fuses into ``LceBconv2d``.
"""

import larq as lq
import tensorflow as tf


@lq.utils.register_keras_custom_object
class BorderCorrectedQuantConv2D(lq.layers.QuantConv2D):
    """``QuantConv2D`` (same arguments) whose training step replaces the padded
    batch by zero padding plus the border's contribution (module docstring)."""

    _add_border = False

    def _corrects_border(self, inputs, training) -> bool:
        return (bool(training) and not self._is_native_padding
                and self.data_format == "channels_last" and inputs.shape[1:].is_fully_defined())

    def call(self, inputs, training=None):
        if not self._corrects_border(inputs, training):
            return super().call(inputs)
        if self.input_quantizer:
            inputs = self.input_quantizer(inputs)
        with lq.context.quantized_scope(True), lq.utils.patch_object(self, "_add_border", True):
            return tf.keras.layers.Conv2D.call(self, inputs)  # "same": zero padding

    def convolution_op(self, inputs, kernel):
        outputs = super().convolution_op(inputs, kernel)
        if not self._add_border:
            return outputs
        zeros = tf.zeros((1, *inputs.shape[1:]), dtype=inputs.dtype)
        bordered = tf.pad(zeros, self._get_padding_same(zeros),
                          constant_values=tf.cast(self.pad_values, inputs.dtype))
        with lq.utils.patch_object(self, "padding", "valid"):
            return outputs + super().convolution_op(bordered, kernel)
