r"""Calibrating the int8 ranges of a binary net on real training images.

Each :class:`~bnnzoo.quantizers.int8.Int8Range` gets the range of the float
tensor it quantizes, measured with every range left out
(``zoo.int8_edges.float_probe``) over ``images`` un-augmented training
images: \([m, M] = [\min_n x_n, \max_n x_n]\) over all images and positions,
widened to hold 0. Ranges tied together, ``same_as`` another (after an average
pooling) or ``shares`` another (a concatenation's inputs), form groups that
take one range each, the union of their members' \([m, M]\): an average
pooling's mean lies within its input's range, so there the group's is the
input's. This is post-training calibration as TFLite's calibrator
does it; the quantization-aware fine-tune that follows (``training.int8_stage``)
then trains the network with those ranges in place.
"""

from collections.abc import Iterable

import numpy as np
import tensorflow as tf

from bnnzoo.errors import UserError
from bnnzoo.quantizers.int8 import int8_ranges, tied_groups
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
        raise UserError("Calibrating the int8 ranges needs at least one training image.")
    ties = [(layer.name, other) for layer in ranges for other in (layer.same_as, layer.shares)
            if other]
    index = {layer.name: i for i, layer in enumerate(ranges)}
    for group in tied_groups(list(index), ties):
        members = [index[name] for name in group]
        lo, hi = low[members].min(), high[members].max()
        for i in members:
            ranges[i].set_range(lo, hi)
    return seen

