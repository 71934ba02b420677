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
with zero padding, so ``weights="imagenet"`` builds the zero-padded variant
(``BiRealNet18ZeroPadded``), whose outputs equal larq-zoo's.

Latent kernels are clipped to [-1, 1] after each update (larq's
``weight_clip``, as in larq-zoo; the official code clamps likewise), so the
gradient mask 1{|W| <= 1} never starves a weight for good.
"""

from typing import Optional, Sequence

import tensorflow as tf
from larq_zoo.core import utils as lqz_utils

from bnnzoo.quantizers.border_corrected_conv import BorderCorrectedQuantConv2D

from .registry import register_model

#: Inputs at most this many pixels on their shorter side use the small-image stem.
SMALL_IMAGE_MAX_SIDE = 64

_IMAGENET_WEIGHTS = {
    # larq-zoo's release of Bi-Real-18 (v0.3.0): file name and pinned SHA-256.
    True: ("birealnet_weights.h5", "6e6efac1584fcd60dd024198c87f42eb53b5ec719a5ca1f527e1fe7e8b997117"),
    False: ("birealnet_weights_notop.h5", "5148b61c0c2a1094bdef811f68bf4957d5ba5f83ad26437b7a4a6855441ab46b"),
}


def uses_small_image_stem(input_shape: Sequence[Optional[int]]) -> bool:
    """True when the image is small (<= 64 px on its shorter known side)."""
    sides = [s for s in input_shape[:2] if s]
    return bool(sides) and min(sides) <= SMALL_IMAGE_MAX_SIDE


def set_input(factory, *, input_shape, input_tensor, weights, include_top, num_classes):
    """larq-zoo's input handling for the zoo's factories: ``factory.image_input``
    (default shape ``factory.default_input_shape``), ``weights``,
    ``include_top``, ``num_classes``; ImageNet weights need the ImageNet stem."""
    if weights == "imagenet" and input_shape is not None and (
        uses_small_image_stem(input_shape) or input_shape[-1] != 3
    ):
        raise ValueError(
            "weights='imagenet' needs RGB inputs larger than "
            f"{SMALL_IMAGE_MAX_SIDE} px (the ImageNet stem); got {tuple(input_shape)}."
        )
    if input_shape is None and input_tensor is None:
        input_shape = factory.default_input_shape
    input_shape = lqz_utils.validate_input(input_shape, weights, include_top, num_classes)
    factory.image_input = lqz_utils.get_input_layer(input_shape, input_tensor)
    factory.weights = weights
    factory.include_top = include_top
    factory.num_classes = num_classes


class BiRealNetFactory:
    """Builds a Bi-Real Net; variants are subclasses that change an attribute.

    Stem: ImageNet (7x7/2 conv -> BatchNorm -> MaxPool 3x3/2) for inputs larger
    than 64 px, small-image (3x3/1 conv -> BatchNorm, no pooling) otherwise,
    as is usual for CIFAR-sized inputs where the ImageNet stem would throw away
    three quarters of the pixels before the first binary layer.
    """

    name = "bireal18"
    stage_blocks = (4, 4, 4, 4)  # binary 3x3 convs per stage
    filters = 64  # width of the first stage; doubles at each following stage

    input_quantizer = "bireal_approx_sign"
    kernel_quantizer = "bireal_magnitude_aware_sign"
    kernel_constraint = "weight_clip"
    pad_values = 1.0
    kernel_initializer = "glorot_normal"
    batch_norm_momentum = 0.8
    has_imagenet_weights = False  # larq-zoo publishes weights for Bi-Real-18 only
    default_input_shape = None  # larq-zoo's: (224, 224, 3)
    default_num_classes = 1000

    def __init__(self, *, input_shape, input_tensor, weights, include_top, num_classes,
                 filters=None):
        if weights == "imagenet" and not self.has_imagenet_weights:
            raise ValueError(f"There are no published ImageNet weights for {self.name}; "
                             "use weights=None or a weights file.")
        if filters is not None:
            if weights == "imagenet" and filters != self.filters:
                raise ValueError(f"The ImageNet weights are for width {self.filters}.")
            if filters < 1:
                raise ValueError(f"filters must be positive; got {filters}.")
            self.filters = filters
        set_input(self, input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                  include_top=include_top, num_classes=num_classes)

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

    def head(self, x):
        x = lqz_utils.global_pool(x)
        x = tf.keras.layers.Dense(self.num_classes)(x)
        return tf.keras.layers.Activation("softmax", dtype="float32")(x)

    def load_weights(self, model):
        if self.weights == "imagenet":
            file, sha256 = _IMAGENET_WEIGHTS[self.include_top]
            path = lqz_utils.download_pretrained_model(
                model="birealnet", version="v0.3.0", file=file, file_hash=sha256
            )
            model.load_weights(path)
        elif self.weights is not None:
            model.load_weights(self.weights)

    def build(self) -> tf.keras.Model:
        x = self.stem(self.image_input)
        for filters, kernel_size, strides in self.convs():
            x = self.residual_block(x, filters, strides, kernel_size)
        if self.include_top:
            x = self.head(x)
        model = tf.keras.Model(inputs=self.image_input, outputs=x, name=self.name)
        self.load_weights(model)
        return model


@register_model(
    "bireal18",
    paper="Liu et al., Bi-Real Net, ECCV 2018 (arXiv:1808.00278)",
    paper_top1=56.4,
    recipe="bireal",
    paper_flops=1.63e8,
)
def bireal18(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: int = 1000,
    filters: Optional[int] = None,
) -> tf.keras.Model:
    """Bi-Real Net with 18 layers (16 binary 3x3 convolutions).

    # ImageNet metrics

    | source | Top-1 | Top-5 | Parameters | Memory (1 bit) |
    | ------ | ----- | ----- | ---------- | -------------- |
    | paper (Liu et al., 2018) | 56.4 % | 79.5 % | | |
    | larq-zoo re-training (`weights="imagenet"`) | 57.47 % | 79.84 % | 11 699 112 | 4.03 MB |

    XNOR-Net-18 in the paper's table: 51.2 % / 73.4 %. LCE, Pixel 1, one
    thread: 41.7 ms (larq-zoo).

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random), ``"imagenet"`` (larq-zoo's Bi-Real-18,
      downloaded once and checked against its SHA-256; builds the
      zero-padded variant those weights were trained with), or a weights file.
    - include_top: whether to end with the pooled real-valued classifier.
    - num_classes: classes of the classifier (1000 with ``"imagenet"``).
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved
      Representational Capability and Advanced Training
      Algorithm](https://arxiv.org/abs/1808.00278)
    """
    factory = BiRealNet18ZeroPadded if weights == "imagenet" else BiRealNet18
    return factory(
        input_shape=input_shape, input_tensor=input_tensor, weights=weights,
        include_top=include_top, num_classes=num_classes, filters=filters,
    ).build()


class BiRealNet18(BiRealNetFactory):
    """Bi-Real-18: four stages of four binary 3x3 convolutions."""

    has_imagenet_weights = True


class BiRealNet18ZeroPadded(BiRealNet18):
    """Bi-Real-18 padding binary convolutions with 0, exactly as larq-zoo's
    ``BiRealNet`` (for its published weights)."""

    pad_values = 0.0
