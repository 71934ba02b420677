r"""Which layers of a model are binary (the ones LCE must turn into
``LceBconv2d``), and what their weights are to training.

A layer states what training must know of its weights, as larq's quantizers
state their ``precision``, and training asks here; nothing looks for a
particular model's attribute names. Two class attributes, both optional:

* ``channel_scale``: the name of the weight that multiplies the layer's output
  channel-wise (the channel on its last axis): SiMaN's
  ``ScaledQuantConv2D.alpha``, the strong baseline's ``LearnedRescale.scale_c``.
  A switch from real to binary weights carries each convolution's magnitude
  \( s_c \) into the first such scale on its output (``training.switch``).
* ``weight_decay_exempt``: the names of the weights that, beside the latent
  kernel, weight decay leaves alone while the layer's kernel is binary
  (SiMaN's ``alpha``). A binary layer's latent kernel is never decayed.
"""

from typing import Optional

import tensorflow as tf


def _precision(quantizer) -> int:
    return getattr(quantizer, "precision", None) or 32


def is_binary_layer(layer: tf.keras.layers.Layer) -> bool:
    """A larq layer whose kernel quantizer is 1-bit."""
    kernel_q = getattr(layer, "kernel_quantizer", None)
    return kernel_q is not None and hasattr(layer, "kernel") and _precision(kernel_q) == 1


def is_binary_operation(layer: tf.keras.layers.Layer) -> bool:
    """A binary layer whose input is 1-bit too: XNOR-popcount, ``LceBconv2d`` on LCE."""
    return is_binary_layer(layer) and _precision(getattr(layer, "input_quantizer", None)) == 1


def binary_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The binary layers of ``model``, nested models included, in order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            found += binary_layers(layer)
        elif is_binary_layer(layer):
            found.append(layer)
    return found


def binary_operations(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The layers that must run bitpacked once exported, in order."""
    return [layer for layer in binary_layers(model) if is_binary_operation(layer)]


def binary_kernels(model: tf.keras.Model) -> list[tf.Variable]:
    """The latent kernels of the binary layers."""
    return [layer.kernel for layer in binary_layers(model)]


def channel_scale(layer: tf.keras.layers.Layer) -> Optional[tf.Variable]:
    """The weight ``layer`` states as its per-output-channel output scale, or None."""
    name = getattr(type(layer), "channel_scale", None)
    return None if name is None else getattr(layer, name)


def undecayed_weights(model: tf.keras.Model) -> list[tf.Variable]:
    """What weight decay must not touch: the binary layers' latent kernels and
    the weights each states as ``weight_decay_exempt`` (SiMaN's learned output
    scales). Their values only matter through a sign or a magnitude ranking,
    and decay distorts that (Bi-Real Net; SiMaN's Laplacian argument)."""
    found = []
    for layer in binary_layers(model):
        exempt = [layer.kernel] + [getattr(layer, name) for name in
                                   getattr(type(layer), "weight_decay_exempt", ())]
        found += [w for w in layer.trainable_weights if any(w is e for e in exempt)]
    return found
