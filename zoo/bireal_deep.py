"""The deeper Bi-Real Nets: 34 layers (basic stages) and 50/101/152 (bottlenecks).

Bi-Real Net's claim (IJCV 2020) is that its per-convolution shortcuts scale a
1-bit CNN to 152 layers. Every binary convolution keeps its own shortcut:

    x -> sign -> bconv -> BatchNorm -> (+ shortcut(x))

* ``bireal34``: ResNet-34's stages as single binary 3x3 convolutions,
  [6, 8, 12, 6] per stage, widths 64/128/256/512.
* ``bireal50/101/152``: bottleneck blocks (1x1 reduce to the stage width w,
  3x3 at w, carrying the stage's stride, 1x1 expand to 4w), [3, 4, 6, 3],
  [3, 4, 23, 3] and [3, 8, 36, 3] blocks per stage; the 1x1s are binary too,
  and wherever a convolution changes the channel count its shortcut is a real
  1x1 conv (after a 2x2 AvgPool when strided) + BatchNorm.

Stems, head, quantizers, +1 padding and weight clipping are ``bireal18``'s.
"""

from typing import Optional, Sequence

import tensorflow as tf

from .bireal import BiRealNetFactory
from .registry import register_model


class BiRealNet34(BiRealNetFactory):
    """Bi-Real-34: [6, 8, 12, 6] binary 3x3 convolutions per stage."""

    name = "bireal34"
    stage_blocks = (6, 8, 12, 6)


class BiRealBottleneckFactory(BiRealNetFactory):
    """Bottleneck Bi-Real Nets; ``stage_blocks`` counts bottleneck blocks."""

    expansion = 4

    def convs(self):
        for stage, blocks in enumerate(self.stage_blocks):
            width = self.filters * 2**stage
            for block in range(blocks):
                yield width, 1, 1
                yield width, 3, 2 if stage > 0 and block == 0 else 1
                yield width * self.expansion, 1, 1


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


@register_model(paper=_PAPER, paper_top1=62.2, twin="resnet34")
def bireal34(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
             weights: Optional[str] = None, include_top: bool = True,
             num_classes: Optional[int] = None,
             filters: Optional[int] = None) -> tf.keras.Model:
    """Bi-Real Net with 34 layers (32 binary 3x3 convolutions).

    # ImageNet metrics (paper)

    | Top-1 | Top-5 |
    | ----- | ----- |
    | 62.2 % | 83.9 % |

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file (no ImageNet weights are published).
    - include_top: whether to end with the pooled real-valued classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved
      Representational Capability and Advanced Training
      Algorithm](https://arxiv.org/abs/1808.00278) (ECCV 2018; IJCV 2020 for 50-152)
    """
    return BiRealNet34(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                       include_top=include_top, num_classes=num_classes, filters=filters).build()


@register_model(paper=_PAPER, paper_top1=62.6, twin="resnet50")
def bireal50(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
             weights: Optional[str] = None, include_top: bool = True,
             num_classes: Optional[int] = None,
             filters: Optional[int] = None) -> tf.keras.Model:
    """Bi-Real Net with 50 layers (16 bottlenecks, 48 binary convolutions).

    # ImageNet metrics (paper, IJCV 2020)

    | Top-1 | Top-5 |
    | ----- | ----- |
    | 62.6 % | 83.9 % |

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file (no ImageNet weights are published).
    - include_top: whether to end with the pooled real-valued classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved
      Representational Capability and Advanced Training
      Algorithm](https://arxiv.org/abs/1808.00278) (ECCV 2018; IJCV 2020 for 50-152)
    """
    return BiRealNet50(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                       include_top=include_top, num_classes=num_classes, filters=filters).build()


@register_model(paper=_PAPER, twin="resnet101")
def bireal101(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
              weights: Optional[str] = None, include_top: bool = True,
              num_classes: Optional[int] = None,
              filters: Optional[int] = None) -> tf.keras.Model:
    """Bi-Real Net with 101 layers (33 bottlenecks, 99 binary convolutions).

    The paper reports no 101-layer figure in the table this project follows.

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file (no ImageNet weights are published).
    - include_top: whether to end with the pooled real-valued classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved
      Representational Capability and Advanced Training
      Algorithm](https://arxiv.org/abs/1808.00278) (ECCV 2018; IJCV 2020 for 50-152)
    """
    return BiRealNet101(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                        include_top=include_top, num_classes=num_classes, filters=filters).build()


@register_model(paper=_PAPER, paper_top1=64.5, twin="resnet152")
def bireal152(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
              weights: Optional[str] = None, include_top: bool = True,
              num_classes: Optional[int] = None,
              filters: Optional[int] = None) -> tf.keras.Model:
    """Bi-Real Net with 152 layers (50 bottlenecks, 150 binary convolutions).

    # ImageNet metrics (paper, IJCV 2020)

    | Top-1 |
    | ----- |
    | 64.5 % |

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file (no ImageNet weights are published).
    - include_top: whether to end with the pooled real-valued classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved
      Representational Capability and Advanced Training
      Algorithm](https://arxiv.org/abs/1808.00278) (ECCV 2018; IJCV 2020 for 50-152)
    """
    return BiRealNet152(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                        include_top=include_top, num_classes=num_classes, filters=filters).build()
