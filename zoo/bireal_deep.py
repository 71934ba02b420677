r"""The deeper Bi-Real Nets: 34 layers (basic stages) and 50/101/152 (bottlenecks).

Bi-Real Net's claim (IJCV 2020) is that its per-convolution shortcuts scale a
1-bit CNN to 152 layers. Every binary convolution keeps its own shortcut:

    x -> sign -> bconv -> BatchNorm -> (+ shortcut)

* ``bireal34``: ResNet-34's stages as single binary 3x3 convolutions,
  [6, 8, 12, 6] per stage, widths 64/128/256/512, with ``bireal18``'s shortcuts.
* ``bireal50/101/152``: the authors' own Bi-Real-50 (62.6 % top-1), the
  bottleneck blocks of github.com/liuzechun/Bi-Real-net,
  ``pytorch_implementation/BiReal_50/birealnet.py`` (``Bottleneck``,
  ``BiRealNet``), with [3, 4, 6, 3], [3, 4, 23, 3] and [3, 8, 36, 3] blocks
  per stage. Stage \(i\) has the mid width \(w_i = 64 \cdot 2^i\) (``filters``
  scales it) and the block width \(4 w_i\).

Two streams run through the blocks: the narrow stream \(n\) (the previous
block's 3x3 output, mid width) and the wide stream \(x\) (the previous block's
output); both start as the stem's output. A block, with \(B\) for BatchNorm,
\(\operatorname{bconv}\) for sign -> binary convolution:

\[ \begin{aligned}
h &= B(\operatorname{bconv}_{1\times1}(x)) + S_n(n)
   && x \to w_i \text{ channels, stride 1} \\
n' &= B(\operatorname{bconv}_{3\times3}(h)) + P(h)
   && \text{carries the stage's stride} \\
x' &= B(\operatorname{bconv}_{1\times1}(n')) + S_x(x)
   && w_i \to 4 w_i \text{ channels}
\end{aligned} \]

and \((n', x')\) go on. Every shortcut is the identity except in the first
block of a stage:

* \(S_x\) (wide): 2x2 average pooling where strided -> real 1x1 conv
  -> BatchNorm;
* \(S_n\) (narrow): a real 1x1 conv without BatchNorm, \(w_{i-1} \to w_i\),
  at the block's input resolution (the first 1x1 has stride 1);
* \(P\): 2x2 average pooling where the 3x3 is strided.

The network's first block (stage 1's, stride 1) opens with a real 1x1 conv
on the leaky clip of the stem's output (``bireal_leaky_clip``: the identity
on [-1, 1], slope 0.1 outside; built as clip, two scalings and an addition,
see ``leaky_clip``) instead of a sign and a binary conv, and, as in the
authors' code, adds no narrow shortcut to it. So ``bireal50`` has 47 binary
convolutions (``bireal101`` 98, ``bireal152`` 149) and nine real ones: the
stem, that 1x1, four wide and three narrow shortcuts.

At 224x224x3 and 1000 classes ``bireal50`` has 25 729 064 trainable
parameters; PyTorch counts 25 730 088 for the authors' network, whose first
block also creates a narrow 1x1 (16 -> 64 channels, 1024 weights) that its
forward pass never uses, left out here. About 86 % of its MACs are binary.

Differences from the authors' code, the family's conventions: binary
convolutions pad with +1 (``pad_values``), the sign maps 0 to +1, kernels are
Bi-Real's magnitude-aware sign with the paper's gradient, and average pooling
pads "same" (equal to the authors' at even sizes, as at 224 px). Stems, head,
quantizers and weight clipping are ``bireal18``'s.
"""

import tensorflow as tf

from bnnzoo.quantizers.bireal import BiRealHardTanh

from .bireal import BIREAL_PAPER, BiRealNetFactory
from .model_docs import ModelDoc
from .registry import register_factory


class BiRealNet34(BiRealNetFactory):
    """Bi-Real-34: [6, 8, 12, 6] binary 3x3 convolutions per stage."""

    name = "bireal34"
    stage_blocks = (6, 8, 12, 6)


class BiRealBottleneckFactory(BiRealNetFactory):
    """Bi-Real-50's two-stream bottlenecks (module docstring);
    ``stage_blocks`` counts bottleneck blocks."""

    expansion = 4
    leaky_clip_slope = 0.1

    def blocks(self):
        """(mid width, stride, first of its stage) of each bottleneck, in order."""
        for stage, blocks in enumerate(self.stage_blocks):
            for block in range(blocks):
                yield self.filters * 2**stage, 2 if stage > 0 and block == 0 else 1, block == 0

    def leaky_clip(self, x):
        r"""``bireal_leaky_clip`` (:func:`bnnzoo.quantizers.leaky_clip`) as layers:
        \((1 - s) \operatorname{clip}(x, -1, 1) + s x\), the clip ``bireal_hard_tanh``.
        The one quantizer layer computes the same; as four layers, ``--int8``
        export gives each its range and runs them in int8 (RELU_N1_TO_1, MUL,
        MUL, ADD), where a single layer's inner arithmetic would stay float."""
        slope = self.leaky_clip_slope
        clipped = tf.keras.layers.Rescaling(1.0 - slope)(BiRealHardTanh()(x))
        return tf.keras.layers.add([clipped, tf.keras.layers.Rescaling(slope)(x)])

    def real_conv(self, x, filters: int):
        """A real 1x1 convolution, no bias."""
        return tf.keras.layers.Conv2D(
            filters, 1, kernel_initializer=self.kernel_initializer, use_bias=False)(x)

    def bottleneck(self, narrow, wide, width: int, strides: int, first: bool, opening: bool):
        """One block on the two streams; returns the new (narrow, wide)."""
        if opening:  # real 1x1 on the leaky clip, no shortcut
            h = self.batch_norm(self.real_conv(self.leaky_clip(wide), width))
        else:
            h = self.batch_norm(self.binary_conv(wide, width, 1))
            h = tf.keras.layers.add([h, self.real_conv(narrow, width) if first else narrow])
        mid = self.batch_norm(self.binary_conv(h, width, 3, strides))
        if strides > 1:
            h = tf.keras.layers.AvgPool2D(strides, strides=strides, padding="same")(h)
        mid = tf.keras.layers.add([mid, h])
        out = self.batch_norm(self.binary_conv(mid, width * self.expansion, 1))
        shortcut = self.shortcut(wide, width * self.expansion, strides) if first else wide
        return mid, tf.keras.layers.add([out, shortcut])

    def body(self, x):
        narrow = x
        for index, (width, strides, first) in enumerate(self.blocks()):
            narrow, x = self.bottleneck(narrow, x, width, strides, first, opening=index == 0)
        return x


class BiRealNet50(BiRealBottleneckFactory):
    name = "bireal50"
    stage_blocks = (3, 4, 6, 3)


class BiRealNet101(BiRealBottleneckFactory):
    name = "bireal101"
    stage_blocks = (3, 4, 23, 3)


class BiRealNet152(BiRealBottleneckFactory):
    name = "bireal152"
    stage_blocks = (3, 8, 36, 3)


_PAPER = "Liu et al., Bi-Real Net, IJCV 2020 (arXiv:1808.00278)"
_REFERENCES = (f"{BIREAL_PAPER} (ECCV 2018; IJCV 2020 for 50-152)",)
_BOTTLENECK_REFERENCES = _REFERENCES + (
    "[The authors' PyTorch Bi-Real-50](https://github.com/liuzechun/Bi-Real-net/blob/master/"
    "pytorch_implementation/BiReal_50/birealnet.py) (the layout followed here)",)

bireal34 = register_factory(BiRealNet34, ModelDoc(
    "Bi-Real Net with 34 layers (32 binary 3x3 convolutions).",
    metrics="ImageNet metrics (paper)", rows=(("62.2 %", "83.9 %"),), references=_REFERENCES),
    paper=_PAPER, paper_top1=62.2, twin="resnet34")
bireal50 = register_factory(BiRealNet50, ModelDoc(
    "Bi-Real Net with 50 layers, its authors' two-stream bottlenecks (16 blocks, 47 binary "
    "convolutions; parameter-free shortcuts but in each stage's first block).",
    metrics="ImageNet metrics (paper, IJCV 2020)", rows=(("62.6 %", "83.9 %"),),
    references=_BOTTLENECK_REFERENCES),
    paper=_PAPER, paper_top1=62.6, twin="resnet50")
bireal101 = register_factory(BiRealNet101, ModelDoc(
    "Bi-Real Net with 101 layers, Bi-Real-50's blocks (33 bottlenecks, 98 binary "
    "convolutions).\n\n"
    "The paper reports no 101-layer figure in the table this project follows.",
    references=_BOTTLENECK_REFERENCES),
    paper=_PAPER, twin="resnet101")
bireal152 = register_factory(BiRealNet152, ModelDoc(
    "Bi-Real Net with 152 layers, Bi-Real-50's blocks (50 bottlenecks, 149 binary "
    "convolutions).",
    metrics="ImageNet metrics (paper, IJCV 2020)", columns=("Top-1",), rows=(("64.5 %",),),
    references=_BOTTLENECK_REFERENCES),
    paper=_PAPER, paper_top1=64.5, twin="resnet152")
