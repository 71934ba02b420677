"""Real-valued twins of the binary nets: the same layout with the quantizers removed.

Bi-Real Net initialises a binary net from its real-valued counterpart, trained
with ``clip(x, -1, 1)`` (hard tanh, ``bireal_hard_tanh``) where the binary net
takes a sign and with real weights where it binarizes them. ``resnetN`` has
exactly ``birealN``'s layers (convolutions, BatchNorms, shortcuts, head) in
the same order, so its trained weights initialise ``birealN`` one to one
(``train --init-from``); its "same" borders are zero-padded, as real nets are.
"""

from .bireal import BiRealNet18
from .bireal_deep import BiRealNet34, BiRealNet50, BiRealNet101, BiRealNet152, builder
from .registry import register_model

_PAPER = "He et al., ResNet, CVPR 2016, in Bi-Real Net's layout (real-valued twin)"


class RealTwin:
    """Mixin: a Bi-Real factory with hard tanh for sign and real weights."""

    input_quantizer = "bireal_hard_tanh"
    kernel_quantizer = None
    kernel_constraint = None
    pad_values = 0.0
    has_imagenet_weights = False


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


#: Bi-Real Net's table: ResNet-18 at 224x224 (its FLOPs count).
PAPER_FLOPS = {"resnet18": 1.81e9}

TWINS = {"bireal18": "resnet18", "bireal34": "resnet34", "bireal50": "resnet50",
         "bireal101": "resnet101", "bireal152": "resnet152"}


def _twin(factory):
    binary = next(b for b, r in TWINS.items() if r == factory.name)
    doc = (f"The real-valued twin of ``{binary}``: its layers, with clip(x, -1, 1) in\n"
           "    place of the sign and real weights. Trained first, it initialises\n"
           f"    ``{binary}`` (``python cli.py train {binary} --init-from RUN``).\n")
    flops = PAPER_FLOPS.get(factory.name)
    return register_model(factory.name, paper=_PAPER, paper_flops=flops)(builder(factory, doc))


resnet18 = _twin(ResNet18)
resnet34 = _twin(ResNet34)
resnet50 = _twin(ResNet50)
resnet101 = _twin(ResNet101)
resnet152 = _twin(ResNet152)
