"""Real-valued twins of the binary nets: the same layout with the quantizers removed.

Bi-Real Net initialises a binary net from its real-valued counterpart, trained
with ``clip(x, -1, 1)`` (hard tanh, ``bireal_hard_tanh``) where the binary net
takes a sign and with real weights where it binarizes them. ``resnetN`` has
exactly ``birealN``'s layers (convolutions, BatchNorms, shortcuts, head) in
the same order, so its trained weights initialise ``birealN`` one to one
(``train --init-from``); its "same" borders are zero-padded, as real nets are.
"""

from typing import Optional

from .bireal import BiRealNet18
from .bireal_deep import BiRealNet34, BiRealNet50, BiRealNet101, BiRealNet152
from .model_docs import ModelDoc
from .registry import register_factory

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


def _register(factory, binary: str, paper_flops: Optional[float] = None):
    """``factory``'s model, the twin of ``binary``."""
    flops = (f"\n\nBi-Real Net's table counts its FLOPs at 224x224: {paper_flops:.3g}."
             if paper_flops else "")
    return register_factory(factory, ModelDoc(
        f"The real-valued twin of ``{binary}``: its layers, with clip(x, -1, 1) in place of "
        f"the sign and real weights.{flops}\n\nTrained first, it initialises ``{binary}`` "
        f"(``python cli.py train {binary} --init-from RUN``).",
        weights="``None`` (random) or a weights file.", classifier="the pooled classifier",
        references=("[Deep Residual Learning for Image "
                    "Recognition](https://arxiv.org/abs/1512.03385)",
                    "[Bi-Real Net](https://arxiv.org/abs/1808.00278), section 3.3 (real-valued "
                    "initialisation)")),
        paper=_PAPER, paper_flops=paper_flops)


resnet18 = _register(ResNet18, "bireal18", paper_flops=1.81e9)
resnet34 = _register(ResNet34, "bireal34")
resnet50 = _register(ResNet50, "bireal50")
resnet101 = _register(ResNet101, "bireal101")
resnet152 = _register(ResNet152, "bireal152")
