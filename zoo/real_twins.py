"""Real-valued twins of the binary nets: the same layout with the quantizers removed.

Bi-Real Net initialises a binary net from its real-valued counterpart, trained
with ``clip(x, -1, 1)`` (hard tanh, ``bireal_hard_tanh``) where the binary net
takes a sign and with real weights where it binarizes them. ``resnetN`` has
exactly ``birealN``'s layers (convolutions, BatchNorms, shortcuts, head) in
the same order, so its trained weights initialise ``birealN`` one to one
(``train --init-from``); its "same" borders are zero-padded, as real nets are.
"""

from typing import Optional, Sequence

import tensorflow as tf

from .bireal import BiRealNet18
from .bireal_deep import BiRealNet34, BiRealNet50, BiRealNet101, BiRealNet152
from .registry import register_model

_PAPER = "He et al., ResNet, CVPR 2016, in Bi-Real Net's layout (real-valued twin)"


class RealTwin:
    """Mixin: a Bi-Real factory with hard tanh for sign and real weights."""

    input_quantizer = "bireal_hard_tanh"
    kernel_quantizer = None
    kernel_constraint = None
    pad_values = 0.0
    imagenet_weights = {}


class ResNet18(RealTwin, BiRealNet18):
    name = "resnet18"


class ResNet34(RealTwin, BiRealNet34):
    name = "resnet34"


class ResNet50(RealTwin, BiRealNet50):
    name = "resnet50"


class ResNet101(RealTwin, BiRealNet101):
    name = "resnet101"


class ResNet152(RealTwin, BiRealNet152):
    name = "resnet152"


@register_model(paper=_PAPER, paper_flops=1.81e9)
def resnet18(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
             weights: Optional[str] = None, include_top: bool = True,
             num_classes: Optional[int] = None,
             filters: Optional[int] = None) -> tf.keras.Model:
    """The real-valued twin of ``bireal18``: its layers, with clip(x, -1, 1) in
    place of the sign and real weights.

    Bi-Real Net's table counts its FLOPs at 224x224: 1.81e9.

    Trained first, it initialises ``bireal18``
    (``python cli.py train bireal18 --init-from RUN``).

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file.
    - include_top: whether to end with the pooled classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385)
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), section 3.3 (real-valued initialisation)
    """
    return ResNet18(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                    include_top=include_top, num_classes=num_classes, filters=filters).build()


@register_model(paper=_PAPER)
def resnet34(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
             weights: Optional[str] = None, include_top: bool = True,
             num_classes: Optional[int] = None,
             filters: Optional[int] = None) -> tf.keras.Model:
    """The real-valued twin of ``bireal34``: its layers, with clip(x, -1, 1) in
    place of the sign and real weights.

    Trained first, it initialises ``bireal34``
    (``python cli.py train bireal34 --init-from RUN``).

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file.
    - include_top: whether to end with the pooled classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385)
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), section 3.3 (real-valued initialisation)
    """
    return ResNet34(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                    include_top=include_top, num_classes=num_classes, filters=filters).build()


@register_model(paper=_PAPER)
def resnet50(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
             weights: Optional[str] = None, include_top: bool = True,
             num_classes: Optional[int] = None,
             filters: Optional[int] = None) -> tf.keras.Model:
    """The real-valued twin of ``bireal50``: its layers, with clip(x, -1, 1) in
    place of the sign and real weights.

    Trained first, it initialises ``bireal50``
    (``python cli.py train bireal50 --init-from RUN``).

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file.
    - include_top: whether to end with the pooled classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385)
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), section 3.3 (real-valued initialisation)
    """
    return ResNet50(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                    include_top=include_top, num_classes=num_classes, filters=filters).build()


@register_model(paper=_PAPER)
def resnet101(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
              weights: Optional[str] = None, include_top: bool = True,
              num_classes: Optional[int] = None,
              filters: Optional[int] = None) -> tf.keras.Model:
    """The real-valued twin of ``bireal101``: its layers, with clip(x, -1, 1) in
    place of the sign and real weights.

    Trained first, it initialises ``bireal101``
    (``python cli.py train bireal101 --init-from RUN``).

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file.
    - include_top: whether to end with the pooled classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385)
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), section 3.3 (real-valued initialisation)
    """
    return ResNet101(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                     include_top=include_top, num_classes=num_classes, filters=filters).build()


@register_model(paper=_PAPER)
def resnet152(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
              weights: Optional[str] = None, include_top: bool = True,
              num_classes: Optional[int] = None,
              filters: Optional[int] = None) -> tf.keras.Model:
    """The real-valued twin of ``bireal152``: its layers, with clip(x, -1, 1) in
    place of the sign and real weights.

    Trained first, it initialises ``bireal152``
    (``python cli.py train bireal152 --init-from RUN``).

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file.
    - include_top: whether to end with the pooled classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385)
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), section 3.3 (real-valued initialisation)
    """
    return ResNet152(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                     include_top=include_top, num_classes=num_classes, filters=filters).build()
