r"""Bi-Real Net's quantizers (Liu et al., ECCV 2018 / IJCV 2020).

The two signs are thin, registered subclasses of larq's built-ins, whose maths
is exactly the paper's: they add the project's names, the maths in the
docstrings and a pure function for the weights that can be used without Keras.
The hard tanh (the real-valued twins' stand-in for the sign) and the leaky clip
(before the real 1x1 convolution that opens Bi-Real-50) are real-valued.
"""

from typing import Optional

import larq as lq
import tensorflow as tf


def magnitude_aware_sign(w: tf.Tensor, clip_value: Optional[float] = 1.0) -> tf.Tensor:
    r"""Bi-Real Net's magnitude-aware sign of a kernel, per output channel.

    Forward, with the output channel on the last axis:
    \[ W_b = \alpha_c \operatorname{sign}(W), \qquad
       \alpha_c = \operatorname{mean}_{k_h, k_w, c_{in}} |W| . \]
    Backward, with \(\alpha_c\) treated as a constant (the paper's
    magnitude-aware gradient):
    \[ \frac{\partial L}{\partial W} = \frac{\partial L}{\partial W_b}\,
       \alpha_c\, \mathbb{1}_{|W| \le 1} . \]
    The official PyTorch code drops the \(\alpha_c\) factor and clamps the
    weights to [-1, 1] instead of masking. ``sign(0) = +1``.

    Built from larq's ``ste_sign`` (sign forward, clipped identity backward).
    """
    reduce_axes = list(range(len(w.shape) - 1))
    alpha = tf.stop_gradient(tf.reduce_mean(tf.abs(w), axis=reduce_axes))
    return alpha * lq.quantizers.ste_sign(w, clip_value=clip_value)


@lq.utils.register_alias("bireal_approx_sign")
@lq.utils.register_keras_custom_object
class BiRealApproxSign(lq.quantizers.ApproxSign):
    r"""Bi-Real Net's approximate sign for activations.

    Forward \( q(x) = \operatorname{sign}(x) \) (+1 for \(x \ge 0\)).
    Backward: the derivative of the piecewise quadratic
    \[ F(x) = \begin{cases} -1 & x < -1 \\ 2x + x^2 & -1 \le x < 0 \\
       2x - x^2 & 0 \le x < 1 \\ 1 & x \ge 1 \end{cases} \qquad
       \frac{\partial q}{\partial x} = \max(0,\, 2 - 2|x|) . \]

    # References
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), Section 3.2.
    """

    precision = 1


@lq.utils.register_alias("bireal_magnitude_aware_sign")
@lq.utils.register_keras_custom_object
class BiRealMagnitudeAwareSign(lq.quantizers.MagnitudeAwareSign):
    r"""Bi-Real Net's magnitude-aware sign for kernels.

    Forward \( W_b = \alpha_c \operatorname{sign}(W) \) with
    \( \alpha_c = \operatorname{mean}|W| \) over all axes but the last (the
    output channel). Backward
    \( \partial L/\partial W = \partial L/\partial W_b \cdot \alpha_c \cdot
    \mathbb{1}_{|W| \le \text{clip\_value}} \), \(\alpha_c\) held constant.
    At inference \(\alpha_c\) folds into the following BatchNorm; LCE does the
    fold itself, so the deployed kernel is pure ±1.

    # Arguments
    - clip_value: the gradient mask's threshold (1.0 in the paper); ``None``
      passes the gradient everywhere.

    # References
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), Section 3.3.
    """

    precision = 1

    def call(self, inputs):
        outputs = magnitude_aware_sign(inputs, clip_value=self.clip_value)
        return lq.quantizers._BaseQuantizer.call(self, outputs)


def hard_tanh(x: tf.Tensor) -> tf.Tensor:
    r"""\( \operatorname{clip}(x, -1, 1) \), gradient \( \mathbb{1}_{|x| \le 1} \)."""
    return tf.clip_by_value(x, -1.0, 1.0)


@lq.utils.register_alias("bireal_hard_tanh")
@lq.utils.register_keras_custom_object
class BiRealHardTanh(lq.quantizers.Quantizer):
    r"""The real-valued stand-in for the sign: \( \operatorname{clip}(x, -1, 1) \).

    Bi-Real Net initialises a binary net from its real-valued twin trained with
    this hard tanh wherever the binary net takes a sign, so the real activations
    already live in [-1, 1] where the sign will cut them. Backward
    \( \partial q/\partial x = \mathbb{1}_{|x| \le 1} \). Not a binary quantizer
    (``precision = 32``).

    # References
    - [Bi-Real Net](https://arxiv.org/abs/1808.00278), Section 3.4 (initialisation).
    """

    precision = 32

    def call(self, inputs):
        return hard_tanh(inputs)


def leaky_clip(x: tf.Tensor, slope: float = 0.1) -> tf.Tensor:
    r"""The leaky clip: the identity on [-1, 1], slope ``slope`` outside.

    \[ q(x) = \begin{cases} x & |x| \le 1 \\
       \operatorname{sign}(x)\,\bigl(1 + s\,(|x| - 1)\bigr) & |x| > 1 \end{cases}
       \;=\; (1 - s)\operatorname{clip}(x, -1, 1) + s\,x , \qquad
       \frac{\partial q}{\partial x} = \begin{cases} 1 & |x| \le 1 \\ s & |x| > 1 \end{cases} \]
    (\(s = 0.1\): \(0.1x - 0.9\) below -1 and \(0.1x + 0.9\) above 1, as the
    authors' ``Leakyclip``). Written as the second form, a clip, two scalings
    and an addition, which TFLite runs as RELU_N1_TO_1, MUL and ADD.
    """
    return (1.0 - slope) * tf.clip_by_value(x, -1.0, 1.0) + slope * x


@lq.utils.register_alias("bireal_leaky_clip")
@lq.utils.register_keras_custom_object
class BiRealLeakyClip(lq.quantizers.Quantizer):
    r"""The leaky clip before the real 1x1 convolution that opens Bi-Real-50's
    first bottleneck (:func:`leaky_clip`): the identity on [-1, 1], slope
    ``slope`` (0.1) outside, so the convolution sees the stem's activations
    squashed towards the range the signs downstream cut, without a dead zone.
    Real-valued (``precision = 32``). A quantizer (``input_quantizer=
    "bireal_leaky_clip"``) or a layer; ``bireal50`` builds the same function
    from layers (``BiRealBottleneckFactory.leaky_clip``) so that int8 export
    can range each step.

    # Arguments
    - slope: the slope outside [-1, 1].

    # References
    - The authors' PyTorch Bi-Real-50 (``Leakyclip`` in
      github.com/liuzechun/Bi-Real-net, ``pytorch_implementation/BiReal_50/birealnet.py``).
    """

    precision = 32

    def __init__(self, slope: float = 0.1, **kwargs):
        self.slope = slope
        super().__init__(**kwargs)

    def call(self, inputs):
        return leaky_clip(inputs, self.slope)

    def get_config(self):
        return {**super().get_config(), "slope": self.slope}
