"""The smallest input a network can use, read from its strides and pooling.

Every binary convolution pads "same", so a network builds at any input, even
3x3: a stride-2 layer that gets 1 pixel returns 1 pixel, and the deeper
layers compute on borders alone. A network *uses* an input of side ``n`` when
every downsampling layer gets at least as many pixels as its stride ("same"
padding) or its window ("valid": a smaller input has no output at all).
``smallest_input_side`` follows a side ``n`` through the built network's
graph, layer by layer from their configurations (no rebuilding), and returns
the least ``n`` that every downsampling layer accepts.
"""

import math
from typing import Optional

import tensorflow as tf

from bnnzoo.errors import UserError

#: Networks take the small-image layout up to 64 px (``core.SMALL_IMAGE_MAX_SIDE``),
#: so the search never has to look further on a small-image graph.
SEARCH_LIMIT = 64


def _pair(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def _downsampling(layer) -> Optional[tuple[int, int, str]]:
    """(stride, window, padding) of a layer that reduces the side, else None."""
    strides = getattr(layer, "strides", None)
    if strides is None:
        return None
    stride = _pair(strides)
    window = _pair(getattr(layer, "pool_size", None) or getattr(layer, "kernel_size", 1))
    padding = str(getattr(layer, "padding", "same")).lower()
    if stride == 1 and (padding == "same" or window == 1):
        return None
    return stride, window, padding


def _rank(layer) -> int:
    """The rank of ``layer``'s output (of its first, for a layer that splits its input)."""
    try:
        return len(tf.nest.flatten(layer.output)[0].shape)
    except (AttributeError, ValueError, IndexError):
        return 0


def _sides(model: tf.keras.Model, side: int) -> tuple[dict[str, Optional[int]], Optional[str]]:
    """Each layer's output side for an input of ``side``, and the first layer
    that cannot use its input (None if every layer can)."""
    sides: dict[str, Optional[int]] = {}
    for layer in model.layers:
        inbound = [inner.name for node in layer.inbound_nodes
                   for inner in tf.nest.flatten(node.inbound_layers)]
        known = [sides[name] for name in inbound if sides.get(name) is not None]
        if not inbound:  # the image input
            sides[layer.name] = side
            continue
        if _rank(layer) != 4:  # pooled, flattened: no side any more
            sides[layer.name] = None
            continue
        if isinstance(layer, tf.keras.layers.Reshape):
            sides[layer.name] = int(layer.target_shape[0])
            continue
        n = max(known) if known else None  # broadcasting (x * 1x1 scale) keeps the larger
        spec = _downsampling(layer)
        if (spec is not None and spec[2] == "valid"
                and isinstance(layer, tf.keras.layers.AveragePooling2D)
                and spec[1] == layer.input_shape[1]):
            # a global pooling (larq-zoo's head): as wide as its input. (A max-pool
            # or a convolution as wide as its input at one size is a fixed window.)
            spec, n = None, 1
        if n is not None and spec is not None:
            stride, window, padding = spec
            if padding == "valid":
                if n < window:
                    return sides, layer.name
                n = (n - window) // stride + 1
            else:
                if n < stride:
                    return sides, layer.name
                n = math.ceil(n / stride)
        sides[layer.name] = n
    return sides, None


def smallest_input_side(model: tf.keras.Model) -> int:
    """The least square input side every downsampling layer of ``model``'s
    graph accepts (searched up to ``SEARCH_LIMIT``, or up to the model's own
    input side where that is larger: larq-zoo's models keep their ImageNet
    stems at every size)."""
    limit = max(SEARCH_LIMIT, model.input_shape[1] or 0)
    for side in range(1, limit + 1):
        if _sides(model, side)[1] is None:
            return side
    return limit + 1


def check_input_side(model: tf.keras.Model, name: str) -> None:
    """A ``UserError`` saying the least input if ``model``'s own input is too small for it."""
    side = model.input_shape[1]
    if side is None or _sides(model, side)[1] is None:
        return
    raise too_small(name, side, smallest_input_side(model))


def too_small(name: str, side: int, least: int) -> UserError:
    return UserError(f"{name} cannot use {side}x{side} inputs: its strides and pooling need "
                      f"at least {least}x{least} (an input size of {least} or more).")
