r"""An XNOR-Net-style ResNet-18 baseline, for ablations against Bi-Real Net.

What Bi-Real Net changes, undone: each shortcut spans a basic block of two
binary 3x3 convolutions (ResNet's block, so the real activations between the
two are lost to the second sign), activations use the plain straight-through
sign (``ste_sign``: gradient \( \mathbb{1}_{|x| \le 1} \)), and weights keep
XNOR-Net's real-valued per-channel scale
\( W_b = \alpha_c \operatorname{sign}(\operatorname{clip}(W, -1, 1)) \),
\( \alpha_c = \operatorname{mean}|\operatorname{clip}(W, -1, 1)| \), with the
gradient flowing through \( \alpha_c \) too (larq-zoo's ``xnor_weight_scale``, as
the ``xnor_scaled_sign`` quantizer).
Stem, head, shortcuts and +1 padding are ``bireal18``'s, so the two differ only
in what the ablation is about.
"""

import tensorflow as tf

from .bireal import BiRealNetFactory
from .model_docs import ModelDoc
from .registry import register_factory


class XNORResNet18(BiRealNetFactory):
    name = "xnor_resnet18"
    stage_blocks = (2, 2, 2, 2)  # basic blocks of two binary 3x3 convolutions
    input_quantizer = "ste_sign"
    kernel_quantizer = "xnor_scaled_sign"  # larq-zoo's xnor_weight_scale

    def residual_block(self, x, filters: int, strides: int = 1, kernel_size: int = 3):
        """x -> [sign -> bconv -> BN -> sign -> bconv -> BN] -> (+ shortcut(x))."""
        shortcut = self.shortcut(x, filters, strides)
        x = self.batch_norm(self.binary_conv(x, filters, kernel_size, strides))
        x = self.batch_norm(self.binary_conv(x, filters, kernel_size, 1))
        return tf.keras.layers.add([x, shortcut])


xnor_resnet18 = register_factory(XNORResNet18, ModelDoc(
    "XNOR-Net-style ResNet-18: 16 binary 3x3 convolutions, one shortcut per two.",
    metrics="ImageNet metrics (Bi-Real Net's table)", rows=(("51.2 %", "73.4 %"),),
    references=("[XNOR-Net](https://arxiv.org/abs/1603.05279)",
                "[Bi-Real Net](https://arxiv.org/abs/1808.00278), Table 4 (XNOR-Net-18).")),
    paper="Rastegari et al., XNOR-Net, ECCV 2016 (ResNet-18, as in Bi-Real Net's table)",
    paper_top1=51.2)
