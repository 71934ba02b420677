r"""Real-to-Binary's soft activation (Martinez et al., ICLR 2020).

The progressive teacher-student pipeline's stage 1 replaces each sign by
\( \tanh \): a real-valued, sign-like activation whose gradient
\( 1 - \tanh^2(x) \) is never zero, so the student learns where its
activations will later be binarized (larq-zoo's ``r2b_fp`` stage uses
``tanh`` likewise).
"""

import larq as lq
import tensorflow as tf


@lq.utils.register_alias("real2bin_tanh")
@lq.utils.register_keras_custom_object
class Real2BinTanh(lq.quantizers.Quantizer):
    r"""\( q(x) = \tanh(x) \), real-valued (precision 32: nothing is bitpacked)."""

    precision = 32

    def call(self, inputs):
        return tf.math.tanh(inputs)
