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

from .bireal import BIREAL_PAPER, BiRealNetFactory
from .model_docs import ModelDoc
from .registry import register_factory


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
_REFERENCES = (f"{BIREAL_PAPER} (ECCV 2018; IJCV 2020 for 50-152)",)

bireal34 = register_factory(BiRealNet34, ModelDoc(
    "Bi-Real Net with 34 layers (32 binary 3x3 convolutions).",
    metrics="ImageNet metrics (paper)", rows=(("62.2 %", "83.9 %"),), references=_REFERENCES),
    paper=_PAPER, paper_top1=62.2, twin="resnet34")
bireal50 = register_factory(BiRealNet50, ModelDoc(
    "Bi-Real Net with 50 layers (16 bottlenecks, 48 binary convolutions).",
    metrics="ImageNet metrics (paper, IJCV 2020)", rows=(("62.6 %", "83.9 %"),),
    references=_REFERENCES),
    paper=_PAPER, paper_top1=62.6, twin="resnet50")
bireal101 = register_factory(BiRealNet101, ModelDoc(
    "Bi-Real Net with 101 layers (33 bottlenecks, 99 binary convolutions).\n\n"
    "The paper reports no 101-layer figure in the table this project follows.",
    references=_REFERENCES),
    paper=_PAPER, twin="resnet101")
bireal152 = register_factory(BiRealNet152, ModelDoc(
    "Bi-Real Net with 152 layers (50 bottlenecks, 150 binary convolutions).",
    metrics="ImageNet metrics (paper, IJCV 2020)", columns=("Top-1",), rows=(("64.5 %",),),
    references=_REFERENCES),
    paper=_PAPER, paper_top1=64.5, twin="resnet152")
