"""Initialising a binary net from a trained network of the same structure.

Bi-Real Net starts its binary net from the trained real-valued twin (clip
instead of sign, real weights): every convolution, BatchNorm and dense layer
takes the twin's weights, the binary kernels their latent real values. Layers
are matched by structure: the layers that hold weights, in order, must agree in
kind (convolution, depthwise convolution, dense, BatchNorm) and in every
weight's shape; the first disagreement stops with a message naming both layers.
"""


import tensorflow as tf

from bnnzoo.errors import UserError
from bnnzoo.quantizers.int8 import Int8Range

_KINDS = (
    ("depthwise convolution", tf.keras.layers.DepthwiseConv2D),
    ("convolution", tf.keras.layers.Conv2D),
    ("dense", tf.keras.layers.Dense),
    ("BatchNorm", tf.keras.layers.BatchNormalization),
)


class InitialisationError(UserError):
    """The two networks' structures differ."""


def _kind(layer) -> str:
    return next((name for name, cls in _KINDS if isinstance(layer, cls)), type(layer).__name__)


def weighted_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The layers holding weights, nested models flattened, in order; int8
    ranges are not weights of the network (calibration sets them)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            found += weighted_layers(layer)
        elif layer.weights and not isinstance(layer, Int8Range):
            found.append(layer)
    return found


def initialise_from(model: tf.keras.Model, source: tf.keras.Model) -> int:
    """Copy ``source``'s weights into ``model``; return how many layers were copied."""
    targets, sources = weighted_layers(model), weighted_layers(source)
    for index, (target, origin) in enumerate(zip(targets, sources)):
        shapes = [tuple(w.shape) for w in target.weights]
        origin_shapes = [tuple(w.shape) for w in origin.weights]
        if _kind(target) != _kind(origin) or shapes != origin_shapes:
            raise InitialisationError(
                f"Cannot initialise {model.name} from {source.name}: their layer {index + 1} "
                f"with weights differs: {target.name} ({_kind(target)}, {shapes}) vs "
                f"{origin.name} ({_kind(origin)}, {origin_shapes}). Train the matching "
                "real-valued twin (same model family, input size and classes) first.")
    if len(targets) != len(sources):
        raise InitialisationError(
            f"Cannot initialise {model.name} from {source.name}: {len(targets)} layers with "
            f"weights against {len(sources)}.")
    for target, origin in zip(targets, sources):
        target.set_weights(origin.get_weights())
    return len(targets)
