r"""Calibrating the int8 ranges of a binary net on real training images.

Each :class:`~bnnzoo.quantizers.int8.Int8Range` gets the range of the float
tensor it quantizes, measured with every range left out
(``zoo.int8_edges.float_probe``) over ``images`` un-augmented training
images: \([m, M] = [\min_n x_n, \max_n x_n]\) over all images and positions,
widened to hold 0; a range ``same_as`` another (after an average pooling)
takes that one's. This is post-training calibration as TFLite's calibrator
does it; the quantization-aware fine-tune that follows (``training.int8_stage``)
then trains the network with those ranges in place.
"""

from typing import Iterable

import numpy as np
import tensorflow as tf

from bnnzoo.quantizers.int8 import int8_ranges
from bnnzoo.zoo.int8_edges import float_probe


def calibrate(model: tf.keras.Model, batches: Iterable) -> int:
    """Set every int8 range of ``model`` from ``(images, labels)`` ``batches``;
    return the number of images seen."""
    ranges = int8_ranges(model)
    if not ranges:
        return 0
    probe = float_probe(model)
    low = np.full(len(ranges), np.inf)
    high = np.full(len(ranges), -np.inf)
    seen = 0
    for images, _ in batches:
        outputs = probe(images, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, tensor in enumerate(outputs):
            low[i] = min(low[i], float(tf.reduce_min(tensor)))
            high[i] = max(high[i], float(tf.reduce_max(tensor)))
        seen += int(images.shape[0])
    if not seen:
        raise ValueError("Calibrating the int8 ranges needs at least one training image.")
    for layer, lo, hi in zip(ranges, low, high):
        layer.set_range(lo, hi)
    by_name = {layer.name: layer for layer in ranges}
    for layer in ranges:
        if layer.same_as:
            source = by_name[layer.same_as]
            layer.range_min.assign(source.range_min)
            layer.range_max.assign(source.range_max)
    return seen
