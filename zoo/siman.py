r"""SiMaN's networks (Lin et al., "SiMaN: Sign-to-Magnitude Network Binarization",
TPAMI 2022), laid out as the official code builds them: SiMaN's layers (``SiManLayers``) and
its ImageNet ResNets.

Every binary convolution is a ``ScaledQuantConv2D``:

    x -> siman_sign(x) (*) (2B - 1) -> * alpha_c

with ``siman_sign`` (per-sample centring, then the sign), ``siman_magnitude``
(B = the top half of each output channel's standardised weights by
magnitude), the learnable per-channel scale alpha (initialised to mean |W|)
and the ``siman_clip`` write-back of the latent weights, whose percentile p
falls from 15 to 0 over training (``SiManClipSchedule``, which the clip asks
training to run each epoch). Train them with the
``siman`` recipes: SGD, cosine, no weight decay on the kernels and alphas.

* ImageNet layout, ``siman_resnet18`` / ``siman_resnet34``: ResNet stages
  [2, 2, 2, 2] / [3, 4, 6, 3] of basic blocks whose two 3x3 binary
  convolutions each have their own shortcut (Bi-Real style), a PReLU after
  every addition, a real strided 1x1 conv + BatchNorm where the shape changes,
  7x7 stem -> BatchNorm -> ReLU -> MaxPool, and a BatchNorm before the
  classifier. The body's BatchNorm scales start at 1e-8, as in the official code.
* CIFAR layouts (``zoo.siman_cifar``): ``siman_resnet20``,
  ``siman_resnet18_cifar`` and ``siman_vgg_small``, on the same layers.

Differences from the official PyTorch code, all deployment-neutral: binary
convolutions pad "same" borders with +1 (``pad_values=1.0``, LCE's native
padding on bitpacked tensors) where the code pads the signed activations with
0; ``siman_resnet18/34`` on inputs of at most 64 px use the 3x3 small-image
stem without pooling, as ``bireal18`` does. Keras's "same" padding puts the
odd border pixel of a strided convolution at the bottom/right where PyTorch
pads both sides, so strided shortcuts sample the pixels the strided 3x3
convolution centres on (``centre_offset``), keeping the addition aligned as in
the official code.
"""

import tensorflow as tf
from larq_zoo.core import utils as lqz_utils

from bnnzoo.quantizers.scaled_conv import ScaledQuantConv2D

from .bireal import BiRealNetFactory
from .core import uses_small_image_stem
from .model_docs import ModelDoc
from .registry import register_factory

PAPER = "Lin et al., SiMaN: Sign-to-Magnitude Network Binarization, TPAMI 2022 (arXiv:2102.07981)"


def centre_offset(side) -> int:
    """Where a 'same'-padded, stride-2 3x3 convolution centres its first output.

    Keras pads "same" borders asymmetrically (the odd pixel at the bottom and
    right): on an even side the outputs sit on input pixels 1, 3, 5, ..., on
    an odd side on 0, 2, 4, ... (PyTorch's ``padding=1`` always on 0, 2, ...).
    A strided shortcut must sample the same pixels, or the two branches of the
    addition are a pixel apart.
    """
    return 1 if side is not None and side % 2 == 0 else 0


@tf.keras.utils.register_keras_serializable(package="bnnzoo")
class SubsampleZeroPad(tf.keras.layers.Layer):
    """ResNet's parameter-free "option A" shortcut: every ``strides``-th pixel
    (those the block's strided 3x3 convolution centres on, ``centre_offset``),
    the new channels zero-padded equally on both sides (``filters - C_in``)."""

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides = filters, strides

    def call(self, x):
        if self.strides > 1:
            top, left = centre_offset(x.shape[1]), centre_offset(x.shape[2])
            x = x[:, top::self.strides, left::self.strides, :]
        extra = self.filters - x.shape[-1]
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


class SiManLayers:
    """Mixin: SiMaN's binary convolutions, initialisation, BatchNorm, PReLU and
    head, for a family's layout (Bi-Real's for the ImageNet ResNets, the CIFAR
    layouts' own in ``zoo.siman_cifar``)."""

    input_quantizer = "siman_sign"
    kernel_quantizer = "siman_magnitude"
    kernel_constraint = "siman_clip"
    pad_values = 1.0
    batch_norm_momentum = 0.9  # PyTorch's default (0.1 in its convention)
    batch_norm_gamma = 1.0  # initial BatchNorm scale in the body

    @property
    def kernel_initializer(self):
        """PyTorch's ``kaiming_normal_``, a new instance per layer (Keras reuses a seeded one)."""
        return tf.keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")

    def batch_norm(self, x):
        return tf.keras.layers.BatchNormalization(
            momentum=self.batch_norm_momentum, epsilon=1e-5,
            gamma_initializer=tf.keras.initializers.Constant(self.batch_norm_gamma))(x)

    def prelu(self, x):
        """PyTorch's ``nn.PReLU(C)``: one slope per channel, initialised to 0.25."""
        return tf.keras.layers.PReLU(tf.keras.initializers.Constant(0.25), shared_axes=[1, 2])(x)

    def binary_conv(self, x, filters: int, kernel_size: int, strides: int = 1):
        """alpha_c * (siman_sign(x) (*) (2B - 1)), 'same' borders padded with +1."""
        return ScaledQuantConv2D(
            filters, kernel_size, strides=strides, padding="same", pad_values=self.pad_values,
            input_quantizer=self.input_quantizer, kernel_quantizer=self.kernel_quantizer,
            kernel_constraint=self.kernel_constraint,
            kernel_initializer=self.kernel_initializer, use_bias=False,
        )(x)

    def strided_1x1_input(self, x, strides: int):
        """``x`` cropped so that a strided 1x1 convolution samples the pixels the
        block's strided 3x3 convolution centres on (``centre_offset``)."""
        if strides == 1:
            return x
        crop = (centre_offset(x.shape[1]), centre_offset(x.shape[2]))
        return tf.keras.layers.Cropping2D(((crop[0], 0), (crop[1], 0)))(x) if any(crop) else x

    def real_conv(self, x, filters: int, kernel_size: int, strides: int = 1):
        return tf.keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                                      kernel_initializer=self.kernel_initializer,
                                      use_bias=False)(x)

    def head(self, x):
        """Global average pool -> BatchNorm (scale 1) -> dense -> softmax."""
        x = lqz_utils.global_pool(x)
        x = tf.keras.layers.BatchNormalization(momentum=self.batch_norm_momentum, epsilon=1e-5)(x)
        return self.classifier(x)


class SiManResNet18(SiManLayers, BiRealNetFactory):
    """ImageNet layout: each binary 3x3 conv with its own shortcut and a PReLU
    after the addition; ``stage_blocks`` counts binary convolutions."""

    name = "siman_resnet18"
    stage_blocks = (4, 4, 4, 4)
    batch_norm_gamma = 1e-8

    def stem(self, x):
        if uses_small_image_stem(x.shape[1:]):
            return tf.keras.layers.ReLU()(self.batch_norm(self.real_conv(x, self.filters, 3)))
        x = tf.keras.layers.ReLU()(self.batch_norm(self.real_conv(x, self.filters, 7, 2)))
        return tf.keras.layers.MaxPool2D(3, strides=2, padding="same")(x)

    def shortcut(self, x, filters: int, strides: int):
        """Identity, or a real strided 1x1 conv -> BatchNorm where the shape changes."""
        if x.shape[-1] == filters and strides == 1:
            return x
        return self.batch_norm(self.real_conv(self.strided_1x1_input(x, strides), filters, 1,
                                              strides))

    def residual_block(self, x, filters: int, strides: int = 1, kernel_size: int = 3):
        """x -> bconv -> BatchNorm -> (+ shortcut(x)) -> PReLU."""
        shortcut = self.shortcut(x, filters, strides)
        x = self.batch_norm(self.binary_conv(x, filters, kernel_size, strides))
        return self.prelu(tf.keras.layers.add([x, shortcut]))


class SiManResNet34(SiManResNet18):
    name = "siman_resnet34"
    stage_blocks = (6, 8, 12, 6)


def siman_doc(summary: str, dataset: str, top1: str, baseline: str, top5: str = "",
              **facts) -> ModelDoc:
    """A SiMaN model's docstring facts: its paper's top-1 (and top-5) on
    ``dataset``, IR-Net's (sign-based) in the same table."""
    return ModelDoc(
        summary, metrics="Metrics (paper)",
        columns=("dataset", "Top-1", "Top-5") if top5 else ("dataset", "Top-1"),
        rows=((dataset, top1, top5) if top5 else (dataset, top1),),
        notes=f"IR-Net (sign-based) in the same table: {baseline}.",
        weights="``None`` (random) or a weights file (no weights are published for Keras).",
        classifier="the real-valued classifier",
        references=("[SiMaN: Sign-to-Magnitude Network "
                    "Binarization](https://arxiv.org/abs/2102.07981) (TPAMI 2022); official "
                    "code: github.com/lmbxmu/SiMaN",), **facts)


_STEM = "Inputs of at most 64 px use the 3x3 small-image stem (no pooling)."

siman_resnet18 = register_factory(SiManResNet18, siman_doc(
    "SiMaN ResNet-18, ImageNet layout (16 binary 3x3 convolutions, each with its shortcut).",
    "ImageNet", "60.1 %", "58.1 %", top5="82.3 %", stem=_STEM),
    paper=PAPER, paper_top1=60.1, recipe="siman_imagenet")
siman_resnet34 = register_factory(SiManResNet34, siman_doc(
    "SiMaN ResNet-34, ImageNet layout (32 binary 3x3 convolutions, each with its shortcut).",
    "ImageNet", "63.9 %", "62.9 %", top5="84.8 %", stem=_STEM),
    paper=PAPER, paper_top1=63.9, recipe="siman_imagenet")
