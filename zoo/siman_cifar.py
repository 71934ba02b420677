"""SiMaN's CIFAR networks (Lin et al., TPAMI 2022), laid out as the official code builds them.

SiMaN's layers (``zoo.siman.SiManLayers``: binary convolutions, kaiming
initialisation, BatchNorm, PReLU, head) in three CIFAR layouts, 32x32x3 and
10 classes by default:

* ``siman_resnet20``: 16/32/64, every binary 3x3 convolution with its own
  shortcut and a PReLU after each addition (the ImageNet ResNets' block), a
  3x3 stem; the shape-changing shortcut is parameter-free: subsample by 2 and
  zero-pad the channels (ResNet's "option A", ``SubsampleZeroPad``);
* ``siman_resnet18_cifar``: 64-512, the standard two-convolution basic block
  with hard tanh, a binarized strided 1x1 downsample;
* ``siman_vgg_small``: real conv0 (128), then binary 128-256-256-512-512 with
  max-pools, and a real classifier.
"""

import tensorflow as tf

from bnnzoo.quantizers import BiRealHardTanh

from .core import ModelFactory
from .registry import register_factory
from .siman import PAPER, SiManLayers, SiManResNet18, SubsampleZeroPad, siman_doc


class SiManResNet20(SiManResNet18):
    """ResNet-20 for CIFAR: 3 stages of 3 basic blocks (6 binary convs), 16/32/64."""

    name = "siman_resnet20"
    default_input_shape = (32, 32, 3)
    default_num_classes = 10
    stage_blocks = (6, 6, 6)
    filters = 16
    batch_norm_gamma = 1.0

    def stem(self, x):
        return tf.keras.layers.ReLU()(self.batch_norm(self.real_conv(x, self.filters, 3)))

    def shortcut(self, x, filters: int, strides: int):
        if x.shape[-1] == filters and strides == 1:
            return x
        return SubsampleZeroPad(filters, strides)(x)


class SiManResNet18Cifar(SiManLayers, ModelFactory):
    """ResNet-18 for CIFAR: the standard basic block (two binary convs, one shortcut)."""

    name = "siman_resnet18_cifar"
    default_input_shape = (32, 32, 3)
    default_num_classes = 10
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


class SiManVGGSmall(SiManLayers, ModelFactory):
    """VGG-small: real conv0, five binary 3x3 convs, max-pools, real classifier."""

    name = "siman_vgg_small"
    default_input_shape = (32, 32, 3)
    default_num_classes = 10
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
        return self.classifier(tf.keras.layers.Flatten()(x))


def _register(factory, summary: str, top1: float, baseline: str, filters: str):
    """A CIFAR-10 layout: its paper's top-1, IR-Net's, what ``filters`` sets."""
    return register_factory(factory, siman_doc(summary, "CIFAR-10", f"{top1} %", baseline,
                                               stem="", filters=filters),
                            paper=PAPER, paper_top1=top1, paper_top1_dataset="CIFAR-10",
                            recipe="siman")


siman_resnet20 = _register(
    SiManResNet20, "SiMaN ResNet-20 for CIFAR (18 binary 3x3 convolutions, each with its "
    "shortcut).", 87.4, "86.5 %", "width of the first stage (16); each stage doubles it.")
siman_resnet18_cifar = _register(
    SiManResNet18Cifar, "SiMaN ResNet-18 for CIFAR (16 binary 3x3 convolutions and 3 binary "
    "1x1 downsamples).", 92.5, "91.5 %",
    "width of the stem and first stage (64); each stage doubles it.")
siman_vgg_small = _register(
    SiManVGGSmall, "SiMaN VGG-small for CIFAR (real conv0, 5 binary 3x3 convolutions, real "
    "classifier).", 92.5, "90.4 %",
    "width of conv0 (128); the binary convolutions are 1, 2, 2, 4 and 4 times it.")
