"""Which layers of a model are binary: the ones LCE must turn into ``LceBconv2d``."""

from typing import List

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


def binary_layers(model: tf.keras.Model) -> List[tf.keras.layers.Layer]:
    """The binary layers of ``model``, nested models included, in order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            found += binary_layers(layer)
        elif is_binary_layer(layer):
            found.append(layer)
    return found


def binary_operations(model: tf.keras.Model) -> List[tf.keras.layers.Layer]:
    """The layers that must run bitpacked once exported, in order."""
    return [layer for layer in binary_layers(model) if is_binary_operation(layer)]


def binary_kernels(model: tf.keras.Model) -> List[tf.Variable]:
    """The latent kernels of the binary layers."""
    return [layer.kernel for layer in binary_layers(model)]


def undecayed_weights(model: tf.keras.Model) -> List[tf.Variable]:
    """What weight decay must not touch: the binary layers' latent kernels and
    their learned output scales (SiMaN's alpha). Their values only matter
    through a sign or a magnitude ranking, and decay distorts that (Bi-Real
    Net; SiMaN's Laplacian argument)."""
    return [w for layer in binary_layers(model) for w in layer.trainable_weights
            if w is layer.kernel or w is getattr(layer, "alpha", None)]
