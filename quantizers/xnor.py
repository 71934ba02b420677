"""XNOR-Net's scaled weight sign, as a quantizer class that survives save and load."""

import larq as lq
from larq_zoo.literature.xnornet import xnor_weight_scale


@lq.utils.register_alias("xnor_scaled_sign")
@lq.utils.register_keras_custom_object
class XNORScaledSign(lq.quantizers.Quantizer):
    r"""\( W_b = \alpha_c \operatorname{sign}(\operatorname{clip}(W, -1, 1)) \),
    \( \alpha_c = \operatorname{mean}|\operatorname{clip}(W, -1, 1)| \) per output channel.

    larq-zoo's ``xnor_weight_scale`` (the gradient flows through the clip and
    through \( \alpha_c \)), wrapped in a class: a plain function quantizer is
    saved by tf-keras as ``builtins.function`` and cannot be loaded back.
    Binary for LCE (``precision = 1``): the scale folds into the output multiplier.

    # References
    - [XNOR-Net](https://arxiv.org/abs/1603.05279)
    """

    precision = 1

    def call(self, inputs):
        return xnor_weight_scale(inputs)
