r"""ReActNet (Liu, Shen, Savvides, Cheng, ECCV 2020): ReActNet-A and ReAct-ResNet-18.

Both use ReActNet's parts (``quantizers.reactnet``): RSign before every
binary convolution (\( \operatorname{sign}(x + b_c) \)), the kernels
\( \alpha_c \operatorname{sign}(W) \) with the straight-through estimator
through \( \operatorname{clip}(W, -1, 1) \), and RPReLU after every residual sum.

**ReActNet-A** (the authors' ``reactnet.py``, MobileNet-V1's widths): a real
3x3 stem of ``filters`` (32) channels, stride 2, and BatchNorm, then 13
blocks of output widths 64, 128, 128, 256, 256, 512 x 6, 1024, 1024 (as
multiples of the stem's: 2, 4, 4, 8, 8, 16 x 6, 32, 32), stride 2 where the
width doubles except 32 -> 64. A block with input \(x\) of \(C\) channels:

    y = RPReLU(BN(bconv3x3_C(RSign(x), stride)) + pool(x))      pool: 2x2 average where strided
    out = RPReLU(BN(bconv1x1_C(RSign(y))) + y)                   width kept
    out = RPReLU(concat(BN(bconv1x1_C(RSign(y))) + y, BN(bconv1x1_C(RSign'(y))) + y))   doubled

No real convolution sits on any shortcut: 31 binary convolutions, each with
its own RSign (the authors' doubling block shares one between its two 1x1s:
the same function when the two shifts are equal), the stem and the
classifier real. The authors pad the sign's borders with 0; this zoo
pads with +1 (``pad_values``), which LCE computes on bitpacked tensors.

**ReAct-ResNet-18**: Bi-Real-18 (``zoo.bireal``: its stem, shortcuts and head)
with RSign before each binary convolution and RPReLU after each addition.

Both follow the small-image rule (``zoo.core``): at most 64 px, the stem has
stride 1 (ReActNet-A) or is Bi-Real's small-image stem (ReAct-ResNet-18).
"""

import tensorflow as tf

from bnnzoo.quantizers.reactnet import RPReLU

from .bireal import BIREAL_PAPER, BiRealNetFactory
from .core import uses_small_image_stem
from .model_docs import ModelDoc
from .registry import register_factory

REACTNET_PAPER = ("[ReActNet: Towards Precise Binary Neural Network with Generalized "
                  "Activation Functions](https://arxiv.org/abs/2003.03488)")


class ReActNetParts:
    """Mixin: ReActNet's quantizers on a binary convolution family."""

    input_quantizer = "reactnet_sign"
    kernel_quantizer = "reactnet_weight_sign"
    kernel_constraint = "weight_clip"  # the gradient mask 1{|W| <= 1} then never starves a weight

    def activation(self, x):
        """RPReLU, after every residual sum."""
        return RPReLU()(x)


class ReActNetA(ReActNetParts, BiRealNetFactory):
    """ReActNet-A; ``binary_conv`` and ``batch_norm`` are the Bi-Real family's."""

    name = "reactnet_a"
    filters = 32  # the stem's width; the blocks' are multiples of it
    block_widths = (2, 4, 4, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)
    batch_norm_momentum = 0.9  # PyTorch's BatchNorm momentum 0.1

    def stem(self, x):
        """3x3 conv, stride 2 (1 for small images) -> BatchNorm."""
        strides = 1 if uses_small_image_stem(x.shape[1:]) else 2
        x = tf.keras.layers.Conv2D(self.filters, 3, strides=strides, padding="same",
                                   kernel_initializer=self.kernel_initializer,
                                   use_bias=False)(x)
        return self.batch_norm(x)

    def sum_and_activation(self, branch, shortcut):
        return self.activation(tf.keras.layers.add([self.batch_norm(branch), shortcut]))

    def block(self, x, width: int, strides: int):
        """RSign -> bconv3x3 -> BN (+ pooled x), RPReLU; RSign -> bconv1x1 -> BN
        (+ that; two concatenated where the width doubles), RPReLU."""
        channels = x.shape[-1]
        shortcut = x
        if strides > 1:
            shortcut = tf.keras.layers.AvgPool2D(strides, strides=strides, padding="same")(x)
        y = self.sum_and_activation(self.binary_conv(x, channels, 3, strides), shortcut)
        if width == channels:
            return self.sum_and_activation(self.binary_conv(y, width, 1), y)
        halves = [tf.keras.layers.add([self.batch_norm(self.binary_conv(y, channels, 1)), y])
                  for _ in range(width // channels)]
        return self.activation(tf.keras.layers.Concatenate()(halves))

    def body(self, x):
        previous = 1
        for index, multiple in enumerate(self.block_widths):
            strides = 2 if index > 0 and multiple != previous else 1
            x = self.block(x, self.filters * multiple, strides)
            previous = multiple
        return x


class ReActResNet18(ReActNetParts, BiRealNetFactory):
    """Bi-Real-18 with RSign before each binary convolution and RPReLU after each sum."""

    name = "reactnet_resnet18"

    def residual_block(self, x, filters: int, strides: int = 1, kernel_size: int = 3):
        """x -> RSign -> bconv -> BatchNorm -> (+ shortcut(x)) -> RPReLU."""
        return self.activation(super().residual_block(x, filters, strides, kernel_size))


_PAPER = "Liu et al., ReActNet, ECCV 2020 (arXiv:2003.03488)"
_TRAINING = ("Trained in two steps taught by a real-valued teacher with the distributional "
             "loss (``zoo.recipes``: ``reactnet``).")

reactnet_a = register_factory(ReActNetA, ModelDoc(
    f"ReActNet-A: 13 blocks of binary 3x3 and 1x1 convolutions (31), every one with an "
    f"parameter-free shortcut.\n\n{_TRAINING}",
    metrics="ImageNet metrics (paper)", columns=("Top-1",), rows=(("69.4 %",),),
    notes="The paper counts 0.87e8 FLOPs (binary operations / 64 plus real FLOPs).",
    stem="Inputs of at most 64 px get a stride-1 stem (no early downsampling).",
    filters="width of the stem (32); the blocks' widths are 2 to 32 times it.",
    references=(REACTNET_PAPER,)),
    paper=_PAPER, paper_top1=69.4, recipe="reactnet", paper_flops=0.87e8)
reactnet_resnet18 = register_factory(ReActResNet18, ModelDoc(
    f"ReAct-ResNet-18: Bi-Real-18 with RSign and RPReLU (16 binary 3x3 convolutions).\n\n"
    f"{_TRAINING}",
    metrics="ImageNet metrics (paper)", columns=("Top-1",), rows=(("65.9 %",),),
    references=(REACTNET_PAPER, BIREAL_PAPER)),
    paper=_PAPER, paper_top1=65.9, recipe="reactnet", paper_flops=1.63e8)
