r"""ReActNet's parts (Liu, Shen, Savvides, Cheng, ECCV 2020), usable in any larq layer.

* ``RSign`` (alias ``"reactnet_sign"``), an input quantizer with a learned
  per-channel shift \( b_c \) (initialised 0) before the sign:
  \[ q(x)_c = \operatorname{sign}(x_c + b_c), \qquad
     \frac{\partial q}{\partial x_c} = \frac{\partial q}{\partial b_c}
     = \max(0,\, 2 - 2|x_c + b_c|) \]
  (Bi-Real's approximate-sign gradient; the threshold becomes \( -b_c \)).
  On LCE the shift is one float ``ADD`` before ``LceQuantize``.
* ``ReActNetWeightSign`` (alias ``"reactnet_weight_sign"``), the kernel
  quantizer of the authors' code:
  \[ W_b = \alpha_c \operatorname{sign}(W), \quad
     \alpha_c = \operatorname{mean}_{k_h, k_w, c_{in}} |W|, \qquad
     \frac{\partial L}{\partial W} = \frac{\partial L}{\partial W_b}\,
     \mathbb{1}_{|W| \le 1} , \]
  the straight-through estimator through \( \operatorname{clip}(W, -1, 1) \)
  with \( \alpha_c \) held constant. Bi-Real's magnitude-aware sign
  (``bireal_magnitude_aware_sign``) has the same forward and multiplies the
  gradient by \( \alpha_c \); this one does not. LCE folds \( \alpha_c \) into
  ``LceBconv2d``'s output multiplier.
* ``RPReLU``, a layer: shift, per-channel PReLU, shift,
  \[ f(x)_c = \begin{cases} x_c - \gamma_c + \zeta_c & x_c > \gamma_c \\
     \beta_c (x_c - \gamma_c) + \zeta_c & x_c \le \gamma_c \end{cases} \]
  with \( \beta_c \) initialised 0.25 (PyTorch's ``PReLU``) and the shifts 0;
  stored as the authors store it, two added biases \( -\gamma_c \) and
  \( \zeta_c \) around Keras's ``PReLU``. On LCE: ``ADD``, ``PRELU``, ``ADD``.

# References
- [ReActNet: Towards Precise Binary Neural Network with Generalized Activation
  Functions](https://arxiv.org/abs/2003.03488), Section 4.
"""

import larq as lq
import tensorflow as tf

from .bireal import BiRealApproxSign


def _channel_bias(layer: tf.keras.layers.Layer, name: str, channels: int) -> tf.Variable:
    return layer.add_weight(name=name, shape=(channels,), initializer="zeros", trainable=True)


@lq.utils.register_alias("reactnet_sign")
@lq.utils.register_keras_custom_object
class RSign(BiRealApproxSign):
    r"""\( \operatorname{sign}(x + b) \) with a learned per-channel shift \(b\)
    (initialised 0) and Bi-Real's approximate-sign gradient (module docstring)."""

    precision = 1

    def build(self, input_shape):
        self.shift = _channel_bias(self, "shift", int(input_shape[-1]))
        super().build(input_shape)

    def call(self, inputs):
        return super().call(inputs + tf.cast(self.shift, inputs.dtype))

    @property
    def non_trainable_weights(self):
        # larq's quantizers report none (their flip-ratio metric's variables are
        # not the network's); frozen, the shift still is a weight of the network.
        shift = getattr(self, "shift", None)
        return [] if self.trainable or shift is None else [shift]


def reactnet_weight_sign(w: tf.Tensor) -> tf.Tensor:
    r"""\( \alpha_c \operatorname{sign}(W) \) forward, \( \mathbb{1}_{|W| \le 1} \)
    backward (module docstring); the output channel on the last axis, sign(0) = +1."""

    @tf.custom_gradient
    def quantize(w):
        alpha = tf.reduce_mean(tf.abs(w), axis=list(range(len(w.shape) - 1)))

        def grad(dy):
            return dy * tf.cast(tf.abs(w) <= 1.0, dy.dtype)

        return alpha * lq.math.sign(w), grad

    return quantize(w)


@lq.utils.register_alias("reactnet_weight_sign")
@lq.utils.register_keras_custom_object
class ReActNetWeightSign(lq.quantizers._BaseQuantizer):
    r"""ReActNet's kernel quantizer: \( \alpha_c \operatorname{sign}(W) \),
    straight-through through \( \operatorname{clip}(W, -1, 1) \) (module docstring)."""

    precision = 1

    def call(self, inputs):
        return super().call(reactnet_weight_sign(inputs))


@lq.utils.register_keras_custom_object
class RPReLU(tf.keras.layers.Layer):
    r"""ReActNet's RPReLU: \( x + b^{in} \to \mathrm{PReLU}_\beta \to {} + b^{out} \),
    per channel, \( b^{in} = -\gamma \), \( b^{out} = \zeta \) (module docstring)."""

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.shift_in = _channel_bias(self, "shift_in", channels)
        self.shift_out = _channel_bias(self, "shift_out", channels)
        self.prelu = tf.keras.layers.PReLU(
            alpha_initializer=tf.keras.initializers.Constant(0.25),
            shared_axes=list(range(1, len(input_shape) - 1)), dtype=self.dtype_policy)
        self.prelu.build(input_shape)
        super().build(input_shape)

    def call(self, inputs):
        x = self.prelu(inputs + tf.cast(self.shift_in, inputs.dtype))
        return x + tf.cast(self.shift_out, x.dtype)
