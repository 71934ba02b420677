r"""SiMaN's networks (Lin et al., "SiMaN: Sign-to-Magnitude Network Binarization",
TPAMI 2022), laid out as the official code builds them.

Every binary convolution is a ``ScaledQuantConv2D``:

    x -> siman_sign(x) (*) (2B - 1) -> * alpha_c

with ``siman_sign`` (per-sample centring, then the sign), ``siman_magnitude``
(B = the top half of each output channel's standardised weights by
magnitude), the learnable per-channel scale alpha (initialised to mean |W|)
and the ``siman_clip`` write-back of the latent weights, whose percentile p
falls from 15 to 0 over training (``SiManClipSchedule``, added by
``training.train`` whenever a model has the constraint). Train them with the
``siman`` recipes: SGD, cosine, no weight decay on the kernels and alphas.

* ImageNet layout, ``siman_resnet18`` / ``siman_resnet34``: ResNet stages
  [2, 2, 2, 2] / [3, 4, 6, 3] of basic blocks whose two 3x3 binary
  convolutions each have their own shortcut (Bi-Real style), a PReLU after
  every addition, a real strided 1x1 conv + BatchNorm where the shape changes,
  7x7 stem -> BatchNorm -> ReLU -> MaxPool, and a BatchNorm before the
  classifier. The body's BatchNorm scales start at 1e-8, as in the official code.
* CIFAR layouts: ``siman_resnet20`` (16/32/64, per-conv shortcut, PReLU after
  each addition, the shape-changing shortcut parameter-free: subsample by 2
  and zero-pad the channels, ResNet's "option A"), ``siman_resnet18_cifar``
  (64-512, the standard two-conv basic block with hard tanh, binarized 1x1
  strided downsample) and ``siman_vgg_small`` (real conv0 128, then binary
  128-256-256-512-512 with max-pools, real classifier).

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

from bnnzoo.quantizers import BiRealHardTanh
from bnnzoo.quantizers.scaled_conv import ScaledQuantConv2D

from .bireal import BiRealNetFactory, uses_small_image_stem
from .bireal_deep import builder
from .registry import register_model

_PAPER = "Lin et al., SiMaN: Sign-to-Magnitude Network Binarization, TPAMI 2022 (arXiv:2102.07981)"
_ARGUMENTS = """
    # Arguments
    - input_shape: ``(height, width, channels)``; default {shape}.
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file (no weights are published for Keras).
    - include_top: whether to end with the real-valued classifier.
    - num_classes: classes of the classifier (default {classes}).
    - filters: width of the first stage ({filters}); the stages widen from it.

    # References
    - [SiMaN: Sign-to-Magnitude Network Binarization](https://arxiv.org/abs/2102.07981)
      (TPAMI 2022); official code: github.com/lmbxmu/SiMaN
"""
IMAGENET_ARGUMENTS = _ARGUMENTS.format(shape="``(224, 224, 3)``; inputs of at most 64 px "
                                       "use the 3x3 small-image stem", classes=1000,
                                       filters=64)
CIFAR_ARGUMENTS = _ARGUMENTS.format(shape="``(32, 32, 3)``", classes=10,
                                    filters="16 for ResNet-20, 64 for ResNet-18, 128 for VGG-small")


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


class SiManFactory(BiRealNetFactory):
    """SiMaN's binary convolutions, initialisation and BatchNorm on the
    Bi-Real factory's input handling, stems and build loop."""

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
        x = tf.keras.layers.Dense(self.num_classes)(x)
        return tf.keras.layers.Activation("softmax", dtype="float32")(x)


class SiManResNet18(SiManFactory):
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


class SiManCifarFactory(SiManFactory):
    default_input_shape = (32, 32, 3)
    default_num_classes = 10


class SiManResNet20(SiManCifarFactory, SiManResNet18):
    """ResNet-20 for CIFAR: 3 stages of 3 basic blocks (6 binary convs), 16/32/64."""

    name = "siman_resnet20"
    stage_blocks = (6, 6, 6)
    filters = 16
    batch_norm_gamma = 1.0

    def stem(self, x):
        return tf.keras.layers.ReLU()(self.batch_norm(self.real_conv(x, self.filters, 3)))

    def shortcut(self, x, filters: int, strides: int):
        if x.shape[-1] == filters and strides == 1:
            return x
        return SubsampleZeroPad(filters, strides)(x)


class SiManResNet18Cifar(SiManCifarFactory):
    """ResNet-18 for CIFAR: the standard basic block (two binary convs, one shortcut)."""

    name = "siman_resnet18_cifar"
    stage_blocks = (2, 2, 2, 2)  # basic blocks per stage

    def stem(self, x):
        return self.batch_norm(self.real_conv(x, self.filters, 3))

    def basic_block(self, x, filters: int, strides: int):
        """bconv -> BN -> hardtanh -> bconv -> BN, + shortcut -> hardtanh; the
        shortcut is binary too where the shape changes: bconv 1x1 (strided) -> BN."""
        shortcut = x
        if x.shape[-1] != filters or strides != 1:
            shortcut = self.batch_norm(
                self.binary_conv(self.strided_1x1_input(x, strides), filters, 1, strides))
        y = BiRealHardTanh()(self.batch_norm(self.binary_conv(x, filters, 3, strides)))
        y = self.batch_norm(self.binary_conv(y, filters, 3))
        return BiRealHardTanh()(tf.keras.layers.add([y, shortcut]))

    def body(self, x):
        for stage, blocks in enumerate(self.stage_blocks):
            for block in range(blocks):
                strides = 2 if stage > 0 and block == 0 else 1
                x = self.basic_block(x, self.filters * 2**stage, strides)
        return x

    def build(self) -> tf.keras.Model:
        x = self.body(self.stem(self.image_input))
        if self.include_top:
            x = self.head(x)
        model = tf.keras.Model(inputs=self.image_input, outputs=x, name=self.name)
        self.load_weights(model)
        return model


class SiManVGGSmall(SiManResNet18Cifar):
    """VGG-small: real conv0, five binary 3x3 convs, max-pools, real classifier."""

    name = "siman_vgg_small"
    filters = 128  # conv0's width; the binary convs are 1, 2, 2, 4, 4 times it
    multiples = (1, 2, 2, 4, 4)  # 128-256-256-512-512; a 2x2 max-pool after the 1st, 3rd, 5th

    @property
    def widths(self):
        return tuple(self.filters * m for m in self.multiples)

    def stem(self, x):
        """The real conv0: 3x3, ``filters`` (128) -> BatchNorm -> PReLU."""
        return self.prelu(self.batch_norm(self.real_conv(x, self.filters, 3)))

    def body(self, x):
        for i, width in enumerate(self.widths):
            x = self.binary_conv(x, width, 3)
            if i % 2 == 0:
                x = tf.keras.layers.MaxPool2D(2)(x)
            x = self.prelu(self.batch_norm(x))
        return x

    def head(self, x):
        x = tf.keras.layers.Flatten()(x)
        x = tf.keras.layers.Dense(self.num_classes)(x)
        return tf.keras.layers.Activation("softmax", dtype="float32")(x)


siman_resnet18 = register_model(
    "siman_resnet18", paper=_PAPER, paper_top1=60.1, recipe="siman_imagenet",
)(builder(SiManResNet18, """\
SiMaN ResNet-18, ImageNet layout (16 binary 3x3 convolutions, each with its shortcut).

    # Metrics (paper)

    | dataset | Top-1 | Top-5 |
    | ------- | ----- | ----- |
    | ImageNet | 60.1 % | 82.3 % |

    IR-Net (sign-based) in the same table: 58.1 %.
""", IMAGENET_ARGUMENTS))

siman_resnet34 = register_model(
    "siman_resnet34", paper=_PAPER, paper_top1=63.9, recipe="siman_imagenet",
)(builder(SiManResNet34, """\
SiMaN ResNet-34, ImageNet layout (32 binary 3x3 convolutions, each with its shortcut).

    # Metrics (paper)

    | dataset | Top-1 | Top-5 |
    | ------- | ----- | ----- |
    | ImageNet | 63.9 % | 84.8 % |

    IR-Net (sign-based) in the same table: 62.9 %.
""", IMAGENET_ARGUMENTS))

siman_resnet20 = register_model("siman_resnet20", paper=_PAPER, recipe="siman")(
    builder(SiManResNet20, """\
SiMaN ResNet-20 for CIFAR (18 binary 3x3 convolutions, each with its shortcut).

    # Metrics (paper)

    | dataset | Top-1 |
    | ------- | ----- |
    | CIFAR-10 | 87.4 % |

    IR-Net (sign-based) in the same table: 86.5 %.
""", CIFAR_ARGUMENTS))

siman_resnet18_cifar = register_model("siman_resnet18_cifar", paper=_PAPER, recipe="siman")(
    builder(SiManResNet18Cifar, """\
SiMaN ResNet-18 for CIFAR (16 binary 3x3 convolutions and 3 binary 1x1 downsamples).

    # Metrics (paper)

    | dataset | Top-1 |
    | ------- | ----- |
    | CIFAR-10 | 92.5 % |

    IR-Net (sign-based) in the same table: 91.5 %.
""", CIFAR_ARGUMENTS))

siman_vgg_small = register_model("siman_vgg_small", paper=_PAPER, recipe="siman")(
    builder(SiManVGGSmall, """\
SiMaN VGG-small for CIFAR (real conv0, 5 binary 3x3 convolutions, real classifier).

    # Metrics (paper)

    | dataset | Top-1 |
    | ------- | ----- |
    | CIFAR-10 | 92.5 % |

    IR-Net (sign-based) in the same table: 90.4 %.
""", CIFAR_ARGUMENTS))

__all__ = ["siman_resnet18", "siman_resnet34", "siman_resnet20", "siman_resnet18_cifar",
           "siman_vgg_small", "SubsampleZeroPad"]
