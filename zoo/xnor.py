"""An XNOR-Net-style ResNet-18 baseline, for ablations against Bi-Real Net.

What Bi-Real Net changes, undone: each shortcut spans a basic block of two
binary 3x3 convolutions (ResNet's block, so the real activations between the
two are lost to the second sign), activations use the plain straight-through
sign (``ste_sign``: gradient \\( \\mathbb{1}_{|x| \\le 1} \\)), and weights keep
XNOR-Net's real-valued per-channel scale
\\( W_b = \\alpha_c \\operatorname{sign}(\\operatorname{clip}(W, -1, 1)) \\),
\\( \\alpha_c = \\operatorname{mean}|\\operatorname{clip}(W, -1, 1)| \\), with the
gradient flowing through \\( \\alpha_c \\) too (larq-zoo's ``xnor_weight_scale``, as
the ``xnor_scaled_sign`` quantizer).
Stem, head, shortcuts and +1 padding are ``bireal18``'s, so the two differ only
in what the ablation is about.
"""

from typing import Optional, Sequence

import tensorflow as tf

from .bireal import BiRealNetFactory
from .registry import register_model


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


@register_model(paper="Rastegari et al., XNOR-Net, ECCV 2016 (ResNet-18, as in Bi-Real Net's "
                "table)", paper_top1=51.2)
def xnor_resnet18(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
                  weights: Optional[str] = None, include_top: bool = True,
                  num_classes: Optional[int] = None,
                  filters: Optional[int] = None) -> tf.keras.Model:
    """XNOR-Net-style ResNet-18: 16 binary 3x3 convolutions, one shortcut per two.

    # ImageNet metrics (Bi-Real Net's table)

    | Top-1 | Top-5 |
    | ----- | ----- |
    | 51.2 % | 73.4 % |

    # Arguments
    - input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``.
      Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling).
    - input_tensor: optional Keras tensor to use as the image input.
    - weights: ``None`` (random) or a weights file (no ImageNet weights are published).
    - include_top: whether to end with the pooled real-valued classifier.
    - num_classes: classes of the classifier; default 1000.
    - filters: width of the first stage (64); each stage doubles it.

    # References
    - [XNOR-Net](https://arxiv.org/abs/1603.05279)
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), Table 4 (XNOR-Net-18).
    """
    return XNORResNet18(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                        include_top=include_top, num_classes=num_classes,
                        filters=filters).build()
