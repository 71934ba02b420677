r"""SiMaN's quantizers (Lin et al., "SiMaN: Sign-to-Magnitude Network
Binarization", TPAMI 2022), as the official code computes them.

Weights are binarized by *magnitude*: within each output channel the half of
the (centred, standardised) weights with the largest magnitude encode to
\( B = 1 \), the rest to \( B = 0 \); the convolution uses \( 2B - 1 \in \{-1, +1\} \),
so a SiMaN layer is an ordinary ±1 binary convolution (plus the per-channel
output scale of ``scaled_conv.ScaledQuantConv2D``) and deploys on LCE as
``LceBconv2d``. Activations are
standardised per sample before the sign.
"""

import larq as lq
import tensorflow as tf

EPSILON = 1e-5


def _channel_axes(w: tf.Tensor):
    return list(range(len(w.shape) - 1))  # all but the last (output channel)


def standardise_per_channel(w: tf.Tensor) -> tf.Tensor:
    r"""\( w_2 = (W - \mu_c) / \sqrt{\sigma_c^2 + 10^{-5}} \), statistics per output channel."""
    mean, variance = tf.nn.moments(w, axes=_channel_axes(w), keepdims=True)
    return (w - mean) / tf.sqrt(variance + EPSILON)


def magnitude_encoding(w: tf.Tensor) -> tf.Tensor:
    r"""SiMaN's code \( B \in \{0, 1\} \) of a kernel, per output channel (last axis).

    \( B = 1 \) where \( |w_2| \) is above its channel's median, \( w_2 \) the
    standardised weights: the top half by magnitude. With \( n \) weights per
    channel (and no ties) exactly \( \lfloor n/2 \rfloor \) are 1 — the
    median rule; for odd \( n \) the median weight itself encodes to 0.
    """
    return (_code(tf.abs(standardise_per_channel(w))) + 1.0) / 2.0


def _code(magnitude: tf.Tensor) -> tf.Tensor:
    """+1 where ``magnitude`` is above its output channel's median, else -1.

    Float arithmetic only, ``sign(sign(m - median) - 1/2)`` (the median itself
    gives -1): a bool-to-float cast of the mask would be 4x its operand, and
    the TFLite converter does not constant-fold such growing ops on large
    kernels, so LCE would not see a constant ±1 kernel to bitpack.
    """
    cout = tf.shape(magnitude)[-1]
    flat = tf.transpose(tf.reshape(magnitude, [-1, cout]))  # (cout, n)
    n = tf.shape(flat)[1]
    ordered = tf.sort(flat, axis=1)
    median = 0.5 * (ordered[:, (n - 1) // 2] + ordered[:, n // 2])  # numpy's median
    return tf.sign(tf.sign(magnitude - median) - 0.5)


@tf.custom_gradient
def _straight_through_code(magnitude: tf.Tensor):
    """Forward exactly 2B - 1 (LCE needs exact ±1); backward the identity."""
    return _code(magnitude), lambda dy: dy


def siman_magnitude(w: tf.Tensor) -> tf.Tensor:
    r"""The kernel the convolution sees: \( 2B - 1 \), with a straight-through gradient.

    Forward \( 2B - 1 \) (``magnitude_encoding``). Backward straight through
    to \( |w_2| \) — \( \partial (2B-1) / \partial |w_2| := 1 \), no clipping
    mask — and from there by the chain rule through the absolute value and the
    per-channel standardisation to \( W \):
    \[ \frac{\partial L}{\partial W} = \frac{\partial L}{\partial W_b}
       \cdot \frac{\partial |w_2|}{\partial W} . \]
    The encoding ignores the weights' signs: \( -W \) gives the same code.
    """
    return _straight_through_code(tf.abs(standardise_per_channel(w)))


def standardise_per_sample(x: tf.Tensor) -> tf.Tensor:
    r"""\( a_1 = (a - \mu) / \sqrt{\sigma^2 + 10^{-5}} \), statistics over each
    sample's (H, W, C)."""
    axes = list(range(1, len(x.shape)))
    mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
    return (x - mean) / tf.sqrt(variance + EPSILON)


@tf.custom_gradient
def siman_sign(x: tf.Tensor):
    r"""SiMaN's activation sign: \( \operatorname{sign}(a_1) \), \( a_1 \) standardised per sample.

    Dividing by \( \sqrt{\sigma^2 + 10^{-5}} > 0 \) never changes a sign, so
    the forward pass computes the same value as
    \[ \operatorname{sign}(a_1) = \operatorname{sign}(a - \mu), \]
    \( \mu \) the mean of each sample over (H, W, C) (and sign(0) = +1, as
    larq's). That is what the graph holds, so a deployed model computes only
    the per-sample mean and a subtraction before LCE's ``LceQuantize``, not the
    variance. The backward pass is the paper's: the approximate sign
    \( \partial q / \partial a_1 = \max(0,\, 2 - 2|a_1|) \) (Bi-Real's, larq's
    ``approx_sign``), then through the standardisation to \( a \).
    """
    centred = x - tf.reduce_mean(x, axis=list(range(1, len(x.shape))), keepdims=True)

    def grad(dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            a1 = standardise_per_sample(x)
        return tape.gradient(a1, x, output_gradients=dy * tf.nn.relu(2.0 - 2.0 * tf.abs(a1)))

    return lq.math.sign(centred), grad


@lq.utils.register_alias("siman_magnitude")
@lq.utils.register_keras_custom_object
class SiManMagnitude(lq.quantizers.Quantizer):
    r"""SiMaN's weight quantizer: \( 2B - 1 \), B the per-channel top half by
    magnitude of the standardised weights (``siman_magnitude``), straight-through
    gradient. Pair it with a per-channel output scale \( \alpha_c \) and no
    weight decay on the kernel (the paper's Laplacian argument).

    # References
    - Lin et al., SiMaN: Sign-to-Magnitude Network Binarization, TPAMI 2022
      (the official code's per-channel centring and standardisation).
    """

    precision = 1

    def call(self, inputs):
        return siman_magnitude(inputs)


@lq.utils.register_alias("siman_sign")
@lq.utils.register_keras_custom_object
class SiManSign(lq.quantizers.Quantizer):
    r"""SiMaN's activation quantizer: per-sample standardisation over (H, W, C),
    then the sign; approximate-sign gradient (``siman_sign``). No parameters.
    """

    precision = 1

    def call(self, inputs):
        return siman_sign(inputs)


def percentile(x: tf.Tensor, q) -> tf.Tensor:
    """The ``q``-th percentile(s) of all of ``x`` (``q`` a scalar or a vector),
    interpolated linearly (numpy's default), from one sort.

    Indexed with ``tf.gather``: a slice would make ``q`` a compile-time
    constant under XLA, so every new p of the schedule would recompile the
    training step.
    """
    ordered = tf.sort(tf.reshape(x, [-1]))
    position = tf.cast(q, ordered.dtype) / 100.0 * tf.cast(tf.size(ordered) - 1, ordered.dtype)
    lower = tf.cast(tf.floor(position), tf.int32)
    upper = tf.minimum(lower + 1, tf.size(ordered) - 1)
    low, high = tf.gather(ordered, lower), tf.gather(ordered, upper)
    return low + (position - tf.floor(position)) * (high - low)


@lq.utils.register_alias("siman_clip")
@lq.utils.register_keras_custom_object
class SiManClip(tf.keras.constraints.Constraint):
    r"""The official code's write-back of the latent kernel, after each update.

    \[ w_1 = W - \mu_c(W), \qquad
       W \leftarrow \operatorname{sign}(w_1)\,
       \operatorname{clip}\bigl(|w_1|,\ P_p(|w_1|),\ P_{100-p}(|w_1|)\bigr) \]
    with \( \mu_c \) the per-output-channel mean and \( P \) percentiles over
    the whole layer. \( p \) decays linearly from 15 at the first epoch to 0
    at the last (``SiManClipSchedule`` sets it); at \( p = 0 \) only the
    centring remains.
    """

    def __init__(self, p: float = 15.0):
        self.p = tf.Variable(float(p), trainable=False, dtype=tf.float32, name="siman_clip_p")

    def __call__(self, w):
        centred = w - tf.reduce_mean(w, axis=_channel_axes(w), keepdims=True)
        magnitude = tf.abs(centred)
        p = tf.cast(self.p, w.dtype)
        low, high = tf.unstack(percentile(magnitude, tf.stack([p, 100.0 - p])))
        return tf.sign(centred) * tf.clip_by_value(magnitude, low, high)

    def get_config(self):
        return {"p": float(self.p.numpy())}

    @classmethod
    def epoch_schedule(cls, epochs: int) -> tf.keras.callbacks.Callback:
        """What training runs each epoch for a model with this clip: p's schedule."""
        return SiManClipSchedule(epochs)


class SiManClipSchedule(tf.keras.callbacks.Callback):
    r"""Sets every ``SiManClip``'s p at the start of each epoch (counted from 0):
    \( p = 15\,(1 - \text{epoch} / (E - 1)) \), so p is 0 on the last epoch.
    (The official code's \( 15\,(1 - \text{epoch}/E) \) stops at 15/E.)
    Training adds it to every run of a model that has the clip (``SiManClip.epoch_schedule``)."""

    def __init__(self, epochs: int, start: float = 15.0):
        super().__init__()
        self.epochs, self.start = epochs, start

    def value(self, epoch: int) -> float:
        if self.epochs <= 1:
            return 0.0
        return self.start * max(0.0, 1.0 - epoch / (self.epochs - 1))

    def on_epoch_begin(self, epoch, logs=None):
        for clip in _clips(self.model):
            clip.p.assign(self.value(epoch))


def _clips(model: tf.keras.Model):
    return [layer.kernel_constraint for layer in model.layers
            if isinstance(getattr(layer, "kernel_constraint", None), SiManClip)]
