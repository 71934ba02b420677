r"""A binary convolution with a learnable per-output-channel scale.

\[ y_c = \alpha_c \, \bigl(q_a(x) \circledast q_w(W)\bigr)_c , \qquad
   \alpha_c^{(0)} = \operatorname{mean}_c |W^{(0)}| \]

SiMaN multiplies the ±1 convolution by \( \alpha \), initialised to the mean
magnitude of each output channel's initial latent weights and then trained
(with no weight decay, like the kernel). On LCE the product folds into
``LceBconv2d``'s per-channel output multiplier, so it costs nothing deployed.
"""

import larq as lq
import tensorflow as tf

from .border_corrected_conv import BorderCorrectedQuantConv2D


@lq.utils.register_keras_custom_object
class ScaledQuantConv2D(BorderCorrectedQuantConv2D):
    """larq's ``QuantConv2D`` (its constant padding border-corrected in training)
    followed by a learnable per-output-channel scale ``alpha`` (initialised to the
    mean absolute initial kernel of the channel)."""

    # What training asks of the layer (zoo.binary_layers): alpha scales each output
    # channel, so a real -> binary weight switch carries the magnitudes into it,
    # and weight decay leaves it alone, as it does the binary kernel.
    channel_scale = "alpha"
    weight_decay_exempt = ("alpha",)

    def build(self, input_shape):
        super().build(input_shape)
        axes = list(range(len(self.kernel.shape) - 1))
        self.alpha = self.add_weight(
            name="alpha", shape=(self.filters,), dtype=self.dtype, trainable=True,
            # a cast: under a mixed-precision policy the kernel reads as bfloat16 here
            initializer=lambda shape, dtype=None: tf.cast(
                tf.reduce_mean(tf.abs(self.kernel), axis=axes), dtype or self.dtype),
        )

    def call(self, inputs, training=None):
        return super().call(inputs, training=training) * self.alpha
