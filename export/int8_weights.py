r"""The float kernels of a model with int8 edges, put on the int8 grid the device uses.

LCE's converter quantizes the real-valued kernels itself: a convolution's per
output channel, symmetric, \(s_c = \max |W_{\cdot c}| / 127\),
\(W_q = s_c \operatorname{round}(W / s_c) \in s_c \{-127, \dots, 127\}\); a dense
layer's the same with one \(s\) for the whole kernel. The BatchNorm after a
convolution multiplies each output channel by a constant \(g_c\), and
\(\max |g_c W_{\cdot c}| = |g_c| \max |W_{\cdot c}|\), so folding it first (as
the converter does) gives the same grid. ``on_int8_grid`` rounds the Keras
model's kernels that way, so that the Keras model computes what the device
computes (up to float rounding) and parity compares like with like. It is
idempotent; binary kernels are left alone (they become bits).
"""

import numpy as np
import tensorflow as tf

from bnnzoo.zoo.binary_layers import is_binary_operation

LEVELS = 127


def symmetric_int8(kernel: np.ndarray, axes) -> np.ndarray:
    r"""``kernel`` rounded to \(s \{-127..127\}\), \(s\) the max |value| over ``axes`` / 127."""
    scale = np.abs(kernel).max(axis=axes, keepdims=True) / LEVELS
    scale = np.where(scale > 0, scale, 1.0)
    return (np.round(kernel / scale) * scale).astype(kernel.dtype)


def on_int8_grid(model: tf.keras.Model) -> int:
    """Round ``model``'s real-valued convolution and dense kernels in place
    (module docstring); return how many."""
    count = 0
    for layer in model.layers:
        if is_binary_operation(layer) or getattr(layer, "kernel", None) is None:
            continue
        if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            axes = (0, 1)  # per channel of the depthwise output (c_in x multiplier)
        elif isinstance(layer, tf.keras.layers.Conv2D):
            axes = (0, 1, 2)
        elif isinstance(layer, tf.keras.layers.Dense):
            axes = None
        else:
            continue
        layer.kernel.assign(symmetric_int8(layer.kernel.numpy(), axes))
        count += 1
    return count
