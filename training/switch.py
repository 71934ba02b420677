r"""The switch from real to binary weights: each channel's weight magnitude carried.

A stage that starts from real weights and binarizes them (Real-to-Binary's
``stage3-binary``, its strong baseline's and Bi-Real's ``step2-binary``)
replaces each binary convolution's real kernel \(W\) by its quantized kernel
\(Q(W)\): \(\operatorname{sign}(W)\) for ``ste_sign``,
\(\alpha_c \operatorname{sign}(W)\) with \(\alpha_c = \operatorname{mean}_c |W|\)
for Bi-Real's magnitude-aware sign. Per output channel \(c\) the
least-squares fit \(W_c \approx s_c\, Q(W)_c\) is

\[ s_c = \frac{\langle W_c, Q(W)_c \rangle}{\lVert Q(W)_c \rVert^2}
   \qquad (= \operatorname{mean}_c |W| \text{ for sign},\; = 1 \text{ for }
   \alpha_c \operatorname{sign}(W)), \]

so for an input \(x\), \( (x \circledast W)_c \approx s_c\, (x \circledast Q(W))_c \):
with plain sign the binary stage's convolution outputs \(1/s_c\) times what
the real stage computed (about 12x for Glorot-initialised kernels at width 16,
\(1/s_c \approx \sqrt{\pi/2}/\operatorname{std}(W)\)). Where the convolution
feeds a residual sum without a BatchNorm in between (Real-to-Binary's blocks),
training-mode BatchNorm does not absorb this: each binary branch outweighs
its shortcut, and the net starts at chance.

At the switch, ``carry_magnitudes`` multiplies \(s_c\) into the first
per-channel scale after the convolution, found by following its output
through layers that commute with a positive per-channel factor (PReLU:
\(\mathrm{PReLU}(s z) = s\,\mathrm{PReLU}(z)\) for \(s \ge 0\); a multiplication
by a gate):

* a learned scale, the weight a layer states as its ``channel_scale``
  (``zoo.binary_layers``: ``LearnedRescale``'s \(s_c\), SiMaN's \(\alpha\),
  the convolution's own or one after it): \(s \leftarrow s_c\, s\);
* a BatchNorm's inference statistics \((m, v)\), as
  \(\mathrm{BN}_{m,v}(s_c y) = \mathrm{BN}_{m',v'}(y)\) with \(m' = m/s_c\),
  \(v' = (v + \epsilon)/s_c^2 - \epsilon\).

No weight is added and none changes shape, so larq-zoo's layouts and weights
stay as they are; on LCE a per-channel scale after a binary convolution folds
into ``LceBconv2d``'s output multiplier. A convolution with no such scale
before its residual sum (``real2bin``'s sigmoid gate bounds its scale to
(0, 1) and has no bias) keeps its \(1/s_c\), and the console says so.

Carrying \(s_c\) fixes the scale, not the rest of the change: \(Q(W)\)
points elsewhere than \(W\), so the mean and variance of every BatchNorm's
input after it move, and the inference statistics inherited from the real
stage (momentum 0.99: hundreds of steps to forget) no longer fit. So
``reestimate_batchnorm`` then replaces every BatchNorm's inference statistics
by the cumulative average over \(K\) training batches of the statistics the
layer sees in training mode,
\( m = \tfrac{1}{K}\sum_k \mu_k,\ v = \tfrac{1}{K}\sum_k \sigma_k^2 \)
(each layer downstream of the others, batch by batch: momentum
\(k/(k+1)\) at batch \(k = 0..K-1\)). Training-mode outputs are unchanged;
only evaluation moves back to where the real stage ended.
"""

from typing import Optional
from collections.abc import Iterable

import numpy as np
import tensorflow as tf

from bnnzoo.errors import UserError
from bnnzoo.zoo.binary_layers import binary_layers, channel_scale

from .initialise import weighted_layers

_COMMUTING = (tf.keras.layers.PReLU, tf.keras.layers.Multiply)


def switched_convolutions(model: tf.keras.Model, source: tf.keras.Model) -> list:
    """The binary layers of ``model`` whose counterpart in ``source`` (matched
    by ``training.initialise``'s order) has real weights."""
    binary = {id(layer) for layer in binary_layers(model)}
    source_binary = {id(layer) for layer in binary_layers(source)}
    return [target for target, origin in zip(weighted_layers(model), weighted_layers(source))
            if id(target) in binary and id(origin) not in source_binary]


def magnitude(layer) -> np.ndarray:
    r"""\(s_c = \langle W_c, Q(W)_c\rangle / \lVert Q(W)_c\rVert^2\) of a binary layer."""
    kernel = tf.convert_to_tensor(layer.kernel)
    quantizer = layer.kernel_quantizer
    # In the variables' float32, also under a mixed-precision policy (a quantizer
    # layer's __call__ would cast to the policy's compute type).
    quantized = tf.cast(quantizer.call(kernel) if isinstance(quantizer, tf.keras.layers.Layer)
                        else quantizer(kernel), kernel.dtype)
    axes = list(range(len(kernel.shape) - 1))
    return (tf.reduce_sum(kernel * quantized, axes)
            / tf.reduce_sum(quantized * quantized, axes)).numpy()


def _scale_after(layer, model: tf.keras.Model) -> Optional[tf.keras.layers.Layer]:
    """The first per-channel scale on ``layer``'s output path (its own first), or None."""
    if channel_scale(layer) is not None:
        return layer
    members = {id(member) for member in model.layers}
    while True:
        consumers = {id(node.outbound_layer): node.outbound_layer
                     for node in layer._outbound_nodes if id(node.outbound_layer) in members}
        if len(consumers) != 1:
            return None
        (layer,) = consumers.values()
        if (isinstance(layer, tf.keras.layers.BatchNormalization)
                or (channel_scale(layer) is not None and not hasattr(layer, "kernel"))):
            return layer  # (a layer with a kernel of its own scales its own output)
        if not isinstance(layer, _COMMUTING):
            return None


def _carry(scale_layer, s: np.ndarray) -> None:
    if isinstance(scale_layer, tf.keras.layers.BatchNormalization):
        eps = scale_layer.epsilon
        scale_layer.moving_mean.assign(scale_layer.moving_mean.numpy() / s)
        scale_layer.moving_variance.assign((scale_layer.moving_variance.numpy() + eps) / s ** 2
                                           - eps)
    else:
        scale = channel_scale(scale_layer)  # the channel on its last axis
        scale.assign(scale.numpy() * s.reshape((1,) * (len(scale.shape) - 1) + (-1,)))


def carry_magnitudes(model: tf.keras.Model, switched: list) -> tuple[int, float]:
    r"""Carry each switched convolution's \(s_c\) into its scale; return how
    many were carried and the median \(1/s_c\) (how much the outputs grew)."""
    carried, factors = 0, []
    for layer in switched:
        s = magnitude(layer)
        if np.any(s <= 0) or not np.all(np.isfinite(s)):
            raise UserError(f"{layer.name}'s real kernel has an output channel of zero weights: "
                            "it has no magnitude to carry into the binary stage.")
        factors.append(1 / s)
        scale_layer = _scale_after(layer, model)
        if scale_layer is not None:
            _carry(scale_layer, s)
            carried += 1
    return carried, float(np.median(np.concatenate(factors)))


def reestimate_batchnorm(model: tf.keras.Model, batches: Iterable) -> int:
    """Every BatchNorm's inference statistics, averaged over ``batches``
    (images, or (images, labels) pairs) seen in training mode; returns how many
    batches were used."""
    norms = [layer for layer in model.layers
             if isinstance(layer, tf.keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    seen = 0
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in norms:
                layer.momentum = seen / (seen + 1)  # seen = 0: the batch's own statistics
            model(images, training=True)
            seen += 1
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return seen


def begin_binary_stage(model: tf.keras.Model, source: tf.keras.Model,
                       batches: Optional[Iterable] = None) -> int:
    """After ``model`` was initialised from ``source``: if that switched
    convolutions from real to binary weights, carry their magnitudes and
    (given training ``batches``) re-estimate the BatchNorm statistics; say it
    once on the console. Returns how many convolutions switched."""
    switched = switched_convolutions(model, source)
    if not switched:
        return 0
    carried, growth = carry_magnitudes(model, switched)
    message = (f"Switched {len(switched)} convolutions to binary weights (outputs x{growth:.3g} "
               f"the real kernels', median): weight magnitudes carried into the per-channel "
               f"scale after {carried}")
    if carried < len(switched):
        message += f" ({len(switched) - carried} have none)"
    if batches is not None:
        message += (f", BatchNorm statistics re-estimated on "
                    f"{reestimate_batchnorm(model, batches)} training batches")
    print(message + ".")
    return len(switched)
