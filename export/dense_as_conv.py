r"""Binary dense layers as the equal 1x1 binary convolutions, which LCE bitpacks.

LCE turns binary ``QuantConv2D`` layers into ``LceBconv2d`` but leaves a
binary ``QuantDense`` a float ``FULLY_CONNECTED`` (compute-engine #669, #806:
"use an equivalent 1x1 QuantConv2D"). For an input \(x \in \mathbb R^{C}\) and
kernel \(W \in \mathbb R^{C \times U}\),
\[ \operatorname{dense}(x)_u = \sum_c q_i(x_c)\, q_k(W)_{cu}
   = \operatorname{conv}_{1\times1}\bigl(q_i(x)_{1\times1\times C},\,
     q_k(W)_{1\times1\times C\times U}\bigr)_{0,0,u} , \]
the same weights in a \(1 \times 1 \times C \times U\) kernel on the input
reshaped to \(1 \times 1 \times C\), so the rewrite changes no value.
"""


import larq as lq
import numpy as np
import tensorflow as tf

from bnnzoo.zoo.binary_layers import is_binary_operation


class BinaryDenseAsConv(lq.layers.QuantConv2D):
    """A binary ``QuantDense`` computed as a 1x1 ``QuantConv2D`` on its input
    reshaped to ``(1, 1, C)``; output ``(units,)`` as the dense layer's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_spec = None  # (batch, C), not a convolution's (batch, H, W, C)

    def build(self, input_shape):
        super().build(tf.TensorShape((input_shape[0], 1, 1, input_shape[-1])))
        self.input_spec = None

    def call(self, inputs):
        pixels = tf.reshape(inputs, (-1, 1, 1, inputs.shape[-1]))
        return tf.reshape(super().call(pixels), (-1, self.filters))

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank == 4:  # the convolution inside (Conv.call asks)
            return super().compute_output_shape(input_shape)
        return tf.TensorShape((input_shape[0], self.filters))


def rewritable(layer) -> bool:
    """A binary ``QuantDense`` (1-bit input and kernel) on flat ``(batch, C)`` inputs."""
    return (isinstance(layer, lq.layers.QuantDense) and is_binary_operation(layer)
            and len(layer.input_shape) == 2)


def binary_dense_as_conv(model: tf.keras.Model) -> tuple[tf.keras.Model, list[str]]:
    """``model`` with each rewritable binary dense layer replaced by
    :class:`BinaryDenseAsConv` (same name, same weights); and their names.
    A model without one is returned as it is."""
    names = [layer.name for layer in model.layers if rewritable(layer)]
    if not names:
        return model, []

    def clone(layer):
        if layer.name not in names:
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        return BinaryDenseAsConv(
            config["units"], 1, name=layer.name, activation=config["activation"],
            use_bias=config["use_bias"], input_quantizer=config["input_quantizer"],
            kernel_quantizer=config["kernel_quantizer"],
            kernel_constraint=config["kernel_constraint"], dtype=layer.dtype)

    rewritten = tf.keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, rewritten.layers):
        weights = old.get_weights()
        if old.name in names:
            weights[0] = np.reshape(weights[0], (1, 1, *weights[0].shape))
        new.set_weights(weights)
    return rewritten, names
