r"""Real-to-Binary Net (Martinez et al., "Training binary neural networks with
real-to-binary convolutions", ICLR 2020), in larq-zoo's layout.

ResNet-18 as 8 blocks (``block_2`` ... ``block_9``) of two binary half-blocks:

    x -> BatchNorm -> sign -> bconv3x3 -> scale -> PReLU -> (+ shortcut(x))

The shortcut is the identity, or ``AvgPool 2x2 -> real 1x1 conv -> BatchNorm``
where the block doubles the channels and halves the resolution (blocks 4, 6
and 8). Each block's output is an attention point (``zoo.core.AttentionPoint``,
named ``..._block_N_out`` as in larq-zoo): where attention is matched between
teacher and student.

* ``real2bin_baseline``, the strong baseline: the scale is a learned constant,
  XNOR-Net++'s \( s_h \, s_w \, s_c \) (one factor per row, column and channel,
  non-negative; applied after the PReLU, which commutes with it, so that LCE
  can run the export: see ``LearnedRescale``).
* ``real2bin``, with the data-driven channel re-scaling (gating): the scale is
  computed from the binary convolution's real-valued input \( x_r \) (the
  BatchNorm output before the sign),
  \[ s = \sigma\big(W_2\, \mathrm{ReLU}(W_1\, \mathrm{GAP}(x_r))\big),
     \qquad W_1 \in \mathbb{R}^{C_{in}/r \times C_{in}},\;
     W_2 \in \mathbb{R}^{C_{out} \times C_{in}/r},\; r = 8, \]
  and multiplies the convolution's output channel-wise
  (``GAP -> Dense(C_in/8, ReLU) -> Dense(C_out, sigmoid) -> multiply``, no
  biases). It stays float after export.

Stem: 7x7/2 conv -> BatchNorm -> PReLU -> MaxPool 3x3/2 above 64 px;
3x3/1 conv -> BatchNorm -> PReLU without pooling on small images (as
``bireal18``). Head: global average pool -> Dense (``..._logits``) -> softmax.
Binary convolutions use larq's ``ste_sign`` on activations and weights with
``weight_clip``, as larq-zoo's final stage, and pad "same" borders with +1
(LCE's native padding).

The training stages are the same network with its quantizers switched
(``zoo.variants``): ``real`` (no quantizers: the teacher), ``soft_activations``
(tanh, real weights), ``binary_activations`` (sign, real weights) and
``binary``. At 224 px ``real2bin``'s layers, their order and weights are
larq-zoo's ``RealToBinaryNet``; ``weights="imagenet"`` loads its published
weights (65.01 % top-1) into the zero-padded variant they were trained with
(``zoo.core``).
"""

import tensorflow as tf
from larq_zoo.core import utils as lqz_utils

from bnnzoo.quantizers.border_corrected_conv import BorderCorrectedQuantConv2D

from .core import ModelFactory, uses_small_image_stem
from .model_docs import ModelDoc, with_larq_zoo_weights
from .registry import register_factory
from .variants import register_variant, with_quantizers


@tf.keras.utils.register_keras_serializable(package="bnnzoo")
class LearnedRescale(tf.keras.layers.Layer):
    r"""XNOR-Net++'s learned scale \( y = x\, s_h s_w s_c \): one factor per row,
    column and channel, initialised to 1 and kept non-negative (larq-zoo's
    ``LearnedRescaleLayer``, with the constraint).

    The strong baseline applies it after the PReLU: for \( s \ge 0 \),
    \( \mathrm{PReLU}(s z) = s\, \mathrm{PReLU}(z) \), so the block computes the
    paper's function. Directly after the binary convolution, LCE's converter
    folds the (H, W, C) factor into ``LceBconv2d``'s per-channel output
    multiplier without checking its shape (``optimize_patterns_common.td``:
    "TODO: Check shapes before fusing"), and LCE's kernel then refuses the
    flatbuffer. After the PReLU it stays float: a MUL by \( s_c \) and one by
    \( s_h s_w \), kept apart so that the file stores C + HW numbers per layer,
    not the HW C of their product.
    """

    # zoo.binary_layers: s_c scales each channel; a real -> binary weight switch
    # carries the convolution's magnitudes into it (training.switch).
    channel_scale = "scale_c"

    def build(self, input_shape):
        _, height, width, channels = input_shape
        for name, shape in (("scale_h", (height, 1, 1)), ("scale_w", (1, width, 1)),
                            ("scale_c", (1, 1, channels))):
            setattr(self, name, self.add_weight(name=name, shape=shape, initializer="ones",
                                                constraint=tf.keras.constraints.NonNeg()))
        super().build(input_shape)

    def call(self, inputs):
        # Two products, so that a converter folds s_h s_w into an (H, W, 1) constant
        # and keeps s_c apart, rather than storing an (H, W, C) tensor per layer.
        return (inputs * self.scale_c) * (self.scale_h * self.scale_w)


PAPER = "Martinez et al., Real-to-Binary Net, ICLR 2020 (arXiv:2003.11535)"


class Real2BinFactory(ModelFactory):
    """Builds ``real2bin`` (``gated``) or ``real2bin_baseline``; layer names follow larq-zoo."""

    name = "real2bin"
    gated = True
    filters = 64  # width of the stem and the first stage; doubles at blocks 4, 6, 8
    scaling_r = 8
    min_filters = scaling_r  # the gate's C/r units need C >= r
    input_quantizer = "ste_sign"
    kernel_quantizer = "ste_sign"
    kernel_constraint = "weight_clip"
    kernel_initializer = "glorot_normal"
    batch_norm_momentum = 0.99
    imagenet_release = ("r2b", "v0.1.0")
    imagenet_weights = {
        True: ("r2b_weights.h5",
               "e8fd16ca1ab9810ac3835f24f5c62758a57bc32a615f73aaa50d382d2b9617e1"),
        False: ("r2b_weights_notop.h5",
                "4ec47abf1a4da5c65f4908076257e8d5c812673891089a88c9d9e84e949d1dab"),
    }

    def batch_norm(self, x, name):
        return tf.keras.layers.BatchNormalization(momentum=self.batch_norm_momentum,
                                                  name=name)(x)

    def stem(self, x):
        name = f"{self.name}_block_1"
        small = uses_small_image_stem(x.shape[1:])
        x = tf.keras.layers.Conv2D(
            self.filters, 3 if small else 7, strides=1 if small else 2, padding="same",
            kernel_initializer=self.kernel_initializer, use_bias=False, name=f"{name}_conv2d",
        )(x)
        x = self.batch_norm(x, f"{name}_batch_norm")
        x = tf.keras.layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x)
        if small:
            return x
        return tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name=f"{name}_pool")(x)

    def shortcut(self, x, filters, name):
        if x.shape[-1] == filters:
            return x
        x = tf.keras.layers.AvgPool2D(2, strides=2, padding="same",
                                      name=f"{name}_shortcut_pool")(x)
        x = tf.keras.layers.Conv2D(filters, 1, kernel_initializer=self.kernel_initializer,
                                   use_bias=False, name=f"{name}_shortcut_conv2d")(x)
        return self.batch_norm(x, f"{name}_shortcut_batch_norm")

    def gate(self, conv_input, conv_output, name):
        """The data-driven channel scale computed from the binary conv's real input."""
        channels_in, channels_out = conv_input.shape[-1], conv_output.shape[-1]
        z = lqz_utils.global_pool(conv_input, name=f"{name}_scaling_pool")
        z = tf.keras.layers.Dense(channels_in // self.scaling_r, activation="relu",
                                  kernel_initializer="he_normal", use_bias=False,
                                  name=f"{name}_scaling_dense_reduce")(z)
        z = tf.keras.layers.Dense(channels_out, activation="sigmoid",
                                  kernel_initializer="he_normal", use_bias=False,
                                  name=f"{name}_scaling_dense_expand")(z)
        z = tf.keras.layers.Reshape((1, 1, channels_out), name=f"{name}_scaling_reshape")(z)
        return tf.keras.layers.Multiply(name=f"{name}_scaling_multiplication")([conv_output, z])

    def half_block(self, x, downsample, name):
        """x -> BatchNorm -> sign -> bconv3x3 -> scale -> PReLU -> (+ shortcut(x))."""
        filters = x.shape[-1] * (2 if downsample else 1)
        shortcut = self.shortcut(x, filters, name)
        conv_input = self.batch_norm(x, f"{name}_batch_norm")
        x = BorderCorrectedQuantConv2D(
            filters, 3, strides=2 if downsample else 1, padding="same",
            pad_values=self.pad_values, input_quantizer=self.input_quantizer,
            kernel_quantizer=self.kernel_quantizer, kernel_constraint=self.kernel_constraint,
            kernel_initializer=self.kernel_initializer, use_bias=False, name=f"{name}_conv2d",
        )(conv_input)
        if self.gated:
            x = self.gate(conv_input, x, name)
        x = tf.keras.layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x)
        if not self.gated:
            x = LearnedRescale(name=f"{name}_rescale")(x)  # = before the PReLU, see the class
        return tf.keras.layers.Add(name=f"{name}_skip_add")([x, shortcut])

    def body(self, x):
        """Blocks 2-9, two half-blocks each; each block's output an attention point."""
        for block in range(2, 10):
            name = f"{self.name}_block_{block}"
            x = self.half_block(x, block in (4, 6, 8), f"{name}a")
            x = self.half_block(x, False, f"{name}b")
            x = self.attention_point(x, f"{name}_out")
        return x

    def head(self, x):
        x = lqz_utils.global_pool(x, name=f"{self.name}_block_10_global_pool")
        x = tf.keras.layers.Dense(self.num_classes, name=f"{self.name}_block_10_logits")(x)
        return tf.keras.layers.Softmax(name=f"{self.name}_block_10_probs", dtype="float32")(x)


def soft_activations(model: tf.keras.Model) -> tf.keras.Model:
    """The progressive pipeline's stage 1: tanh in place of each sign
    (``quantizers.real2bin``), real weights, zero padding."""
    return with_quantizers(model, input_quantizer="real2bin_tanh", kernel_quantizer=None,
                           kernel_constraint=None, pad_values=0.0)


register_variant("soft_activations", soft_activations)


class Real2BinBaseline(Real2BinFactory):
    name = "real2bin_baseline"
    gated = False
    min_filters = 1
    imagenet_weights = {}


_REFERENCES = ("[Training binary neural networks with real-to-binary "
               "convolutions](https://openreview.net/forum?id=BJg4NgBKvH) (ICLR 2020)",)

real2bin = register_factory(Real2BinFactory, with_larq_zoo_weights(
    "Real-to-Binary Net: the strong baseline with data-driven gating, trained by the "
    "progressive teacher-student pipeline (recipe ``real2bin``).",
    paper="Martinez et al., 2020", top1_top5=("65.4 %", "86.2 %"),
    larq_zoo=("65.01 %", "85.72 %", "11 995 624", "5.13 MB"),
    notes="Real-valued ResNet-18 in the paper: 69.3 % / 89.2 %. LCE, Pixel 1, one thread: "
          "48.8 ms (larq-zoo).",
    filters="width of the stem and the first stage (64, at least 8); the stages double it.",
    references=_REFERENCES),
    paper=PAPER, paper_top1=65.4, recipe="real2bin")
real2bin_baseline = register_factory(Real2BinBaseline, ModelDoc(
    "Real-to-Binary's strong baseline: a learned constant scale (XNOR-Net++) after each "
    "binary convolution, trained in two stages (binary activations with real weights, then "
    "fully binary from the first; recipe ``real2bin_baseline``).",
    metrics="ImageNet metrics (paper)", rows=(("60.9 %", "83.0 %"),),
    weights="``None`` (random) or a weights file (none are published).",
    filters="width of the stem and the first stage (64); the stages double it.",
    references=_REFERENCES),
    paper=PAPER, paper_top1=60.9, recipe="real2bin_baseline")
