r"""int8 fake quantization: where a float tensor of a binary net becomes int8 on the device.

LCE's converter gives a layer int8 weights and activations only where the
graph says which range each tensor takes: a ``FakeQuantWithMinMaxVars`` op
(its own end-to-end tests put one after each BatchNorm); its
``experimental_default_int8_range`` instead gives every tensor one guessed
range and is, in its own docstring, for latency tests only.
:class:`Int8Range` is that op as a Keras layer with a fixed, calibrated range.

Forward (TensorFlow's ``fake_quant_with_min_max_vars``, 8 bits, full range):
the range \([m, M]\) (with \(m \le 0 \le M\)) is first nudged so that 0 is a
level, \(s = (M - m) / 255\), \(z = \operatorname{round}(-m / s)\) then
\(m' = -z s\), \(M' = (255 - z) s\); and
\[ \operatorname{fq}(x) = s \,\operatorname{round}\!\bigl(
      (\operatorname{clip}(x, m', M') - m') / s\bigr) + m' , \]
exactly TFLite's int8 tensor \(x = s\,(q - z_8)\) with \(q \in [-128, 127]\),
\(z_8 = z - 128\). Backward: straight through inside \([m', M']\), 0
outside. A value within \(s/2\) of 0 becomes exactly 0, which the next
binary layer's sign reads as +1 (larq's \(\operatorname{sign}(0) = +1\), and
LCE's bitpacking sets a bit only for \(q < z_8\)): the same in Keras and on the
device, so training with this layer in place (quantization-aware) teaches
the network around it (compute-engine #344: post-training ranges alone flip
those signs).

A range ``same_as`` another's follows an average pooling, whose int8 kernel
on the device keeps the input's range and rounds the mean of the raw levels
\(t = \tfrac1n \sum_i q_i\) half away from zero, where
\(\operatorname{fq}\) rounds half up: in training and evaluation such a
range first moves \(x\) by \(10^{-3} s \operatorname{sign}(t)\) (less than
any non-tie distance \(1/(2n)\) for the pools of these nets), which
settles the ties the device's way; in the graph given to the converter
(:func:`exporting`) it is the plain op, which the converter reads.

The range is set by calibration (``training.calibration``) and is not
trained: \(m\) and \(M\) are non-trainable weights, saved with the model.

References:
    Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference", CVPR 2018.
"""

import contextlib

import larq as lq
import tensorflow as tf

NUM_BITS = 8
TIE_NUDGE = 1e-3  # in steps s: settles a pooled mean's ties as the device rounds them
_EXPORTING = []


@contextlib.contextmanager
def exporting():
    """Trace the model for the converter: each range is the plain fake-quant op."""
    _EXPORTING.append(True)
    try:
        yield
    finally:
        _EXPORTING.pop()


@lq.utils.register_keras_custom_object
class Int8Range(tf.keras.layers.Layer):
    """Fake int8 quantization of its input over a calibrated range.

    Arguments:
        quantizes: name of the layer whose output this range covers (what
            calibration measures; the model input's layer for the input).
        same_as: name of another ``Int8Range`` whose range this one takes
            (an average pooling's output has its input's range on the device).
        shares: name of another ``Int8Range`` with which this one shares a
            single range, the union of both tensors' (a concatenation's inputs
            and output have one scale on the device: TFLite's int8
            CONCATENATION requires it).
    """

    def __init__(self, quantizes: str = "", same_as: str = "", shares: str = "", **kwargs):
        kwargs.setdefault("dtype", "float32")  # the levels s*k are exact only in float32
        super().__init__(**kwargs)
        self.quantizes = quantizes
        self.same_as = same_as
        self.shares = shares

    def build(self, input_shape):
        self.range_min = self.add_weight("range_min", shape=(), initializer=tf.constant_initializer(-6.0),
                                         trainable=False)
        self.range_max = self.add_weight("range_max", shape=(), initializer=tf.constant_initializer(6.0),
                                         trainable=False)
        super().build(input_shape)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        if self.same_as and not _EXPORTING:
            x = x + self._tie_nudge(x)
        return tf.quantization.fake_quant_with_min_max_vars(
            x, self.range_min, self.range_max, num_bits=NUM_BITS, narrow_range=False)

    def _tie_nudge(self, x):
        r"""\(10^{-3} s \operatorname{sign}(t)\), \(t\) the raw int8 level of ``x``
        (module docstring), with the op's own nudged range."""
        scale = (self.range_max - self.range_min) / (2**NUM_BITS - 1)
        zero = tf.round(-self.range_min / scale)  # z in [0, 255]; raw int8 zero point z - 128
        raw = (x - (-zero * scale)) / scale - 2 ** (NUM_BITS - 1)
        direction = tf.where(raw >= 0, 1.0, -1.0)
        return tf.stop_gradient(TIE_NUDGE * scale * direction)

    def set_range(self, low: float, high: float) -> None:
        r"""Set \([m, M]\), widened to hold 0 (an int8 tensor represents 0 exactly)."""
        low, high = min(float(low), 0.0), max(float(high), 0.0)
        if high - low <= 0.0:
            high = low + 1e-3  # a tensor that is 0 everywhere: any range holds it
        self.range_min.assign(low)
        self.range_max.assign(high)

    def get_config(self):
        return {**super().get_config(), "quantizes": self.quantizes, "same_as": self.same_as,
                "shares": self.shares}


def int8_ranges(model: tf.keras.Model):
    """The model's :class:`Int8Range` layers, in order."""
    return [layer for layer in model.layers if isinstance(layer, Int8Range)]


def tied_groups(names, ties) -> list:
    """The sets into which the pairs ``ties`` join ``names`` (union-find):
    each name in exactly one set, alone if untied; sets in the order of their
    first member, each a list in ``names``' order."""
    parent = {name: name for name in names}

    def root(name):
        while parent[name] != name:
            name = parent[name]
        return name

    for a, b in ties:
        parent[root(b)] = root(a)
    groups = {}
    for name in parent:
        groups.setdefault(root(name), []).append(name)
    return list(groups.values())
