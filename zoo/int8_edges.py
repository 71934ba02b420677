r"""A binary net with int8 edges: fake-quantization ranges where its float tensors are.

``with_int8_edges(model)`` rebuilds a functional model with an
:class:`~bnnzoo.quantizers.int8.Int8Range` on the model input and after
every layer that sets a new range on the device; LCE's converter then gives
the real-valued convolutions, dense layers, additions and poolings int8
weights and activations, and the binary convolutions int8 outputs, while they
stay ``LceBconv2d``. The ranges go where TFLite's int8 kernels fuse:

* not between a convolution / dense layer and the BatchNorm or activation that
  follows it: the converter folds those into the layer, and a range in between
  would leave them as separate float MUL / ADD (larq #907); the range goes
  after the BatchNorm (activation) instead, as in LCE's own int8 tests;
* not after layers that keep their input's scale (max pooling, reshapes,
  padding, dropout): TFLite's int8 kernels for them require the input's
  range; an average pooling keeps its input's range too, but its mean of
  \(n\) levels is rounded back to a level on the device, so it gets a range
  equal to its input's (``same_as``) that rounds it the same way in Keras
  (up to ties, which TFLite rounds away from zero and Keras up);
* not after a softmax: TFLite's int8 softmax has a fixed output range
  (\(s = 1/256\));
* not after a concatenation: TFLite's int8 concatenation requires its inputs
  and output to have one scale, so the ranges that reach its inputs (through
  scale-keeping layers and earlier concatenations: a DenseNet block's) are
  tied (``shares``) and calibrated to their union, which its output keeps.

The layers are the model's own (weights shared); only the ranges are new.
"""

import collections

import tensorflow as tf

from bnnzoo.quantizers.int8 import Int8Range, int8_ranges, tied_groups

SCALE_KEEPING = (tf.keras.layers.MaxPooling2D, tf.keras.layers.AveragePooling2D,
                 tf.keras.layers.GlobalAveragePooling2D, tf.keras.layers.Reshape, tf.keras.layers.Flatten,
                 tf.keras.layers.ZeroPadding2D, tf.keras.layers.Dropout)
FUSED_AFTER = (tf.keras.layers.BatchNormalization,)
REROUNDED = (tf.keras.layers.AveragePooling2D, tf.keras.layers.GlobalAveragePooling2D)
CONCATENATING = (tf.keras.layers.Concatenate,)


def _is_softmax(layer) -> bool:
    return isinstance(layer, tf.keras.layers.Softmax) or (
        isinstance(layer, tf.keras.layers.Activation)
        and getattr(layer.activation, "__name__", "") == "softmax")


def _fused_activation(layer) -> bool:
    return (isinstance(layer, tf.keras.layers.ReLU) or
            (isinstance(layer, tf.keras.layers.Activation) and not _is_softmax(layer)))


def needs_range(layer, consumers: list) -> bool:
    """Whether ``layer``'s output gets an int8 range (module docstring)."""
    if isinstance(layer, (Int8Range, *SCALE_KEEPING, *CONCATENATING)) or _is_softmax(layer):
        return False
    return not consumers or not all(
        isinstance(c, FUSED_AFTER) or _fused_activation(c) for c in consumers)


class _Same:
    """What ``Node.map_arguments`` pops for each use of a tensor: the same tensor."""

    def __init__(self, tensor):
        self.tensor = tensor

    def pop(self):
        return self.tensor


def _rebuild(model: tf.keras.Model, after, passthrough=()):
    """Call ``model``'s layers again in order on new tensors: ``after(layer,
    consumers, tensor)`` gives what stands for each output of ``layer`` (the
    model input's layer included); layers of the ``passthrough`` types are
    not called (their output is their input). Returns the new tensors by the
    original's id."""
    nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True)
             for node in model._nodes_by_depth[depth]]
    # Keras keys its tensors by str(id(tensor)), as Node.map_arguments does.
    consumers: dict[str, list] = collections.defaultdict(list)
    for node in nodes:
        for tensor in node.keras_inputs:
            consumers[str(id(tensor))].append(node.layer)
    mapped = {}
    for tensor in model.inputs:
        layer = tensor._keras_history.layer
        mapped[str(id(tensor))] = _Same(after(layer, consumers[str(id(tensor))], tensor))
    for node in nodes:
        if node.is_input:
            continue
        args, kwargs = node.map_arguments(mapped)
        if isinstance(node.layer, passthrough):
            outputs = [args[0]]
        else:
            outputs = tf.nest.flatten(node.layer(*args, **kwargs))
        for original, new in zip(tf.nest.flatten(node.outputs), outputs):
            mapped[str(id(original))] = _Same(after(node.layer, consumers[str(id(original))], new))
    return mapped


def _range_before(layer):
    """The ``Int8Range`` whose output ``layer`` was last called on, through
    scale-keeping layers; ``None`` if there is none."""
    while True:
        inbound = layer._inbound_nodes[-1].inbound_layers
        if isinstance(inbound, list):
            return None
        if isinstance(inbound, Int8Range):
            return inbound
        if isinstance(inbound, CONCATENATING):  # its inputs' ranges are tied: any one
            return next(iter(_ranges_into(inbound)), None)
        if not isinstance(inbound, SCALE_KEEPING):
            return None
        layer = inbound


def _ranges_into(layer) -> list[Int8Range]:
    """The ``Int8Range`` layers whose outputs reach ``layer``'s (last call's)
    inputs through scale-keeping layers and concatenations."""
    inbound = layer._inbound_nodes[-1].inbound_layers
    found = []
    for upstream in inbound if isinstance(inbound, list) else [inbound]:
        if isinstance(upstream, Int8Range):
            found.append(upstream)
        elif isinstance(upstream, (*SCALE_KEEPING, *CONCATENATING)):
            found += _ranges_into(upstream)
    return found


def _tie_concatenations(model: tf.keras.Model) -> None:
    """Each concatenation's input ranges share one range (module docstring):
    every member of a tied set but the first ``shares`` the first's."""
    ties = []
    for layer in model.layers:
        if isinstance(layer, CONCATENATING):
            first, *others = _ranges_into(layer) or [None]
            ties += [(first.name, other.name) for other in others]
    by_name = {layer.name: layer for layer in int8_ranges(model)}
    for first, *others in tied_groups(list(by_name), ties):
        for name in others:
            by_name[name].shares = first


def with_int8_edges(model: tf.keras.Model) -> tf.keras.Model:
    """``model`` with int8 ranges at its edges (module docstring); a model that
    already has them is returned as it is."""
    if int8_ranges(model):
        return model

    named = collections.Counter()

    def name(layer):  # a layer of several outputs (a split) gets a range for each
        named[layer.name] += 1
        return f"{layer.name}_int8" + (f"_{named[layer.name] - 1}" if named[layer.name] > 1 else "")

    def after(layer, consumers, tensor):
        if isinstance(layer, tf.keras.layers.InputLayer) or needs_range(layer, consumers):
            return Int8Range(name=name(layer), quantizes=layer.name)(tensor)
        if isinstance(layer, REROUNDED):
            upstream = _range_before(layer)
            if upstream is not None:
                return Int8Range(name=name(layer), quantizes=layer.name,
                                 same_as=upstream.name)(tensor)
        return tensor

    mapped = _rebuild(model, after)
    int8 = tf.keras.Model(model.inputs, [mapped[str(id(t))].tensor for t in model.outputs],
                          name=model.name)
    _tie_concatenations(int8)
    return int8


def float_probe(model: tf.keras.Model) -> tf.keras.Model:
    """For a model with int8 ranges: the same layers (weights shared) with every
    range left out, from the input to the float tensor each range quantizes,
    in the order of ``int8_ranges(model)``: what calibration measures."""
    seen = {}

    def after(layer, consumers, tensor):
        if isinstance(layer, Int8Range):
            seen[layer.name] = tensor
        return tensor

    _rebuild(model, after, passthrough=Int8Range)
    return tf.keras.Model(model.inputs, [seen[r.name] for r in int8_ranges(model)])
