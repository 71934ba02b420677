"""Bi-Real Net (Liu et al., ECCV 2018; IJCV 2020), in larq-zoo's conventions.

Each binary 3x3 convolution has its own identity shortcut, so the real-valued
activations before each sign are carried forward:

    x -> sign -> bconv3x3 -> BatchNorm -> (+ x)

Where width or resolution changes, the shortcut is
``AvgPool2D(2, 2) -> real 1x1 conv -> BatchNorm``. No ReLU in the body; the
stem and the classifier stay real-valued.

At 224 px the layers, their order and their weights are exactly those of
``larq_zoo.literature.BiRealNet``, so larq-zoo's published ImageNet weights
load into ``bireal18``. One deliberate difference: binary convolutions pad
"same" borders with +1 (``pad_values=1.0``), the padding LCE computes on
bitpacked tensors directly; larq-zoo pads with 0. Those weights were trained
with zero padding, so ``weights="imagenet"`` builds ``bireal18`` zero-padded
(``zoo.core``), whose outputs then equal larq-zoo's.

Latent kernels are clipped to [-1, 1] after each update (larq's
``weight_clip``, as in larq-zoo; the official code clamps likewise), so the
gradient mask 1{|W| <= 1} never starves a weight for good.
"""

import tensorflow as tf

from bnnzoo.quantizers.border_corrected_conv import BorderCorrectedQuantConv2D

from .core import ModelFactory, uses_small_image_stem
from .model_docs import with_larq_zoo_weights
from .registry import register_factory


class BiRealNetFactory(ModelFactory):
    """Bi-Real Net's layout; the depths and the XNOR and SiMaN ResNets change attributes.

    Stem: ImageNet (7x7/2 conv -> BatchNorm -> MaxPool 3x3/2) for inputs larger
    than 64 px, small-image (3x3/1 conv -> BatchNorm, no pooling) otherwise,
    as is usual for CIFAR-sized inputs where the ImageNet stem would throw away
    three quarters of the pixels before the first binary layer. Body: a
    ``residual_block`` for each of ``convs()``.
    """

    name = "bireal18"
    stage_blocks = (4, 4, 4, 4)  # binary 3x3 convs per stage

    input_quantizer = "bireal_approx_sign"
    kernel_quantizer = "bireal_magnitude_aware_sign"
    kernel_constraint = "weight_clip"
    kernel_initializer = "glorot_normal"
    batch_norm_momentum = 0.8

    def batch_norm(self, x):
        return tf.keras.layers.BatchNormalization(momentum=self.batch_norm_momentum)(x)

    def stem(self, x):
        if uses_small_image_stem(x.shape[1:]):
            x = tf.keras.layers.Conv2D(
                self.filters, 3, padding="same",
                kernel_initializer=self.kernel_initializer, use_bias=False,
            )(x)
            return self.batch_norm(x)
        x = tf.keras.layers.Conv2D(
            self.filters, 7, strides=2, padding="same",
            kernel_initializer=self.kernel_initializer, use_bias=False,
        )(x)
        x = self.batch_norm(x)
        return tf.keras.layers.MaxPool2D(3, strides=2, padding="same")(x)

    def shortcut(self, x, filters: int, strides: int):
        """Identity, or AvgPool 2x2 -> real 1x1 conv -> BatchNorm on a change."""
        if x.shape[-1] == filters and strides == 1:
            return x
        if strides > 1:
            x = tf.keras.layers.AvgPool2D(strides, strides=strides, padding="same")(x)
        x = tf.keras.layers.Conv2D(
            filters, 1, kernel_initializer=self.kernel_initializer, use_bias=False
        )(x)
        return self.batch_norm(x)

    def binary_conv(self, x, filters: int, kernel_size: int, strides: int = 1):
        """sign(x) (*) (alpha_c sign(W)), 'same' borders padded with ``pad_values``."""
        return BorderCorrectedQuantConv2D(
            filters, kernel_size, strides=strides, padding="same", pad_values=self.pad_values,
            input_quantizer=self.input_quantizer,
            kernel_quantizer=self.kernel_quantizer,
            kernel_constraint=self.kernel_constraint,
            kernel_initializer=self.kernel_initializer,
            use_bias=False,
        )(x)

    def residual_block(self, x, filters: int, strides: int = 1, kernel_size: int = 3):
        """x -> sign -> bconv -> BatchNorm -> (+ shortcut(x))."""
        shortcut = self.shortcut(x, filters, strides)
        x = self.binary_conv(x, filters, kernel_size, strides)
        x = self.batch_norm(x)
        return tf.keras.layers.add([x, shortcut])

    def convs(self):
        """(filters, kernel size, strides) of each binary convolution, in order:
        ``stage_blocks[i]`` 3x3 convolutions of width ``filters * 2**i``, the
        first of each stage after the first with stride 2."""
        for stage, blocks in enumerate(self.stage_blocks):
            for block in range(blocks):
                yield self.filters * 2**stage, 3, 2 if stage > 0 and block == 0 else 1

    def body(self, x):
        for filters, kernel_size, strides in self.convs():
            x = self.residual_block(x, filters, strides, kernel_size)
        return x


class BiRealNet18(BiRealNetFactory):
    """Bi-Real-18: four stages of four binary 3x3 convolutions; larq-zoo's weights."""

    imagenet_release = ("birealnet", "v0.3.0")
    imagenet_weights = {
        True: ("birealnet_weights.h5",
               "6e6efac1584fcd60dd024198c87f42eb53b5ec719a5ca1f527e1fe7e8b997117"),
        False: ("birealnet_weights_notop.h5",
                "5148b61c0c2a1094bdef811f68bf4957d5ba5f83ad26437b7a4a6855441ab46b"),
    }


BIREAL_PAPER = ("[Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved "
                "Representational Capability and Advanced Training "
                "Algorithm](https://arxiv.org/abs/1808.00278)")

bireal18 = register_factory(BiRealNet18, with_larq_zoo_weights(
    "Bi-Real Net with 18 layers (16 binary 3x3 convolutions).",
    paper="Liu et al., 2018", top1_top5=("56.4 %", "79.5 %"),
    larq_zoo=("57.47 %", "79.84 %", "11 699 112", "4.03 MB"),
    notes="XNOR-Net-18 in the paper's table: 51.2 % / 73.4 %. LCE, Pixel 1, one thread: "
          "41.7 ms (larq-zoo).",
    references=(BIREAL_PAPER,)),
    paper="Liu et al., Bi-Real Net, ECCV 2018 (arXiv:1808.00278)", paper_top1=56.4,
    recipe="bireal", paper_flops=1.63e8, twin="resnet18")
