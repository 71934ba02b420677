"""SiMaN's quantizers against methods.md's formulas, computed independently in numpy."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnnzoo.quantizers import (SiManMagnitude, SiManSign, magnitude_encoding, siman_magnitude,
                               siman_sign)
from bnnzoo.quantizers import ScaledQuantConv2D
from bnnzoo.quantizers.siman import SiManClip, SiManClipSchedule

EPS = 1e-5


def np_standardise(x, axes):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + EPS)


def np_standardise_backward(x, h, axes):
    """dL/dx for y = standardise(x) given h = dL/dy (mean and variance over ``axes``)."""
    y = np_standardise(x, axes)
    s = np.sqrt(x.var(axis=axes, keepdims=True) + EPS)
    return (h - h.mean(axis=axes, keepdims=True) - y * (h * y).mean(axis=axes, keepdims=True)) / s


def kernel(shape=(3, 3, 8, 16), seed=0):
    return np.random.default_rng(seed).laplace(size=shape).astype("float64")


def test_each_channel_encodes_its_top_half_by_standardised_magnitude():
    w = kernel()
    code = magnitude_encoding(tf.constant(w)).numpy()
    magnitude = np.abs(np_standardise(w, (0, 1, 2))).reshape(-1, 16)
    code = code.reshape(-1, 16)
    n = magnitude.shape[0]  # 72 per channel
    for c in range(16):
        top = set(np.argsort(magnitude[:, c])[n // 2:])
        assert set(np.flatnonzero(code[:, c])) == top
    assert (code.sum(axis=0) == n // 2).all()


def test_odd_channel_size_gives_floor_half():
    w = kernel((3, 3, 1, 4))  # 9 weights per channel: the median one encodes to 0
    assert (magnitude_encoding(tf.constant(w)).numpy().reshape(-1, 4).sum(axis=0) == 4).all()


def test_encoding_is_blind_to_sign_and_to_a_per_channel_shift():
    w = kernel()
    code = magnitude_encoding(tf.constant(w)).numpy()
    np.testing.assert_array_equal(magnitude_encoding(tf.constant(-w)).numpy(), code)
    shifted = w + np.arange(16) * 0.3  # centring per output channel removes it
    np.testing.assert_array_equal(magnitude_encoding(tf.constant(shifted)).numpy(), code)
    assert not np.array_equal(code, (w > 0).astype(float))  # not a sign


def test_kernel_is_two_b_minus_one_with_straight_through_gradient():
    w = tf.constant(kernel())
    g = tf.constant(np.random.default_rng(1).normal(size=w.shape))
    with tf.GradientTape() as tape:
        tape.watch(w)
        out = siman_magnitude(w)
        loss = tf.reduce_sum(out * g)
    np.testing.assert_array_equal(out.numpy(), 2 * magnitude_encoding(w).numpy() - 1)
    # Straight through to |w2| (no mask), then abs and standardisation by hand.
    w2 = np_standardise(w.numpy(), (0, 1, 2))
    expected = np_standardise_backward(w.numpy(), g.numpy() * np.sign(w2), (0, 1, 2))
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), expected, rtol=1e-6, atol=1e-9)


def test_activation_sign_standardises_each_sample():
    x = np.random.default_rng(2).normal(loc=[[[[3.0]]], [[[-2.0]]]], size=(2, 4, 4, 3))
    x = tf.constant(x)
    g = tf.constant(np.random.default_rng(3).normal(size=x.shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = siman_sign(x)
        loss = tf.reduce_sum(out * g)
    xn = x.numpy()
    centred = xn - xn.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_array_equal(out.numpy(), np.where(centred >= 0, 1.0, -1.0))
    assert 0.3 < (out.numpy() > 0).mean() < 0.7  # a plain sign would give all +1 / all -1
    a1 = np_standardise(xn, (1, 2, 3))
    h = g.numpy() * np.maximum(0, 2 - 2 * np.abs(a1))  # approximate sign's derivative
    expected = np_standardise_backward(xn, h, (1, 2, 3))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, cls", [("siman_magnitude", SiManMagnitude),
                                       ("siman_sign", SiManSign)])
def test_registered_binary_quantizers(name, cls):
    quantizer = lq.quantizers.get(name)
    assert isinstance(quantizer, cls) and quantizer.precision == 1


def test_clip_centres_per_channel_and_clips_to_layer_percentiles():
    w = kernel()
    clipped = SiManClip(10.0)(tf.constant(w, tf.float32)).numpy()
    centred = w - w.mean(axis=(0, 1, 2), keepdims=True)
    low, high = np.percentile(np.abs(centred), [10, 90])
    expected = np.sign(centred) * np.clip(np.abs(centred), low, high)
    np.testing.assert_allclose(clipped, expected, rtol=1e-5, atol=1e-6)
    assert (np.abs(clipped) <= high + 1e-6).all() and (np.abs(clipped) >= low - 1e-6).all()
    at_zero = SiManClip(0.0)(tf.constant(w, tf.float32)).numpy()
    np.testing.assert_allclose(at_zero, centred, rtol=1e-5, atol=1e-6)  # p = 0: centring only


def test_clip_schedule_decays_from_15_to_0_on_the_last_epoch():
    inp = tf.keras.Input((4, 4, 2))
    layer = lq.layers.QuantConv2D(4, 3, kernel_quantizer="siman_magnitude",
                                  kernel_constraint=SiManClip(), use_bias=False)
    model = tf.keras.Model(inp, layer(inp))
    schedule = SiManClipSchedule(epochs=4)
    schedule.set_model(model)
    seen = []
    for epoch in range(4):
        schedule.on_epoch_begin(epoch)
        seen.append(float(layer.kernel_constraint.p.numpy()))
    np.testing.assert_allclose(seen, [15, 10, 5, 0], atol=1e-6)


def test_scaled_conv_starts_alpha_at_each_channels_mean_magnitude():
    inp = tf.keras.Input((6, 6, 4))
    conv = ScaledQuantConv2D(8, 3, input_quantizer="siman_sign", kernel_quantizer="siman_magnitude",
                             use_bias=False)
    model = tf.keras.Model(inp, conv(inp))
    kernel = conv.kernel.numpy()
    np.testing.assert_allclose(conv.alpha.numpy(), np.abs(kernel).mean(axis=(0, 1, 2)), rtol=1e-6)
    conv.alpha.assign(np.linspace(-2, 2, 8).astype("float32"))  # learnable, any sign
    x = np.random.default_rng(4).normal(size=(2, 6, 6, 4)).astype("float32")
    signs = np.where(x - x.mean(axis=(1, 2, 3), keepdims=True) >= 0, 1.0, -1.0).astype("float32")
    plain = tf.nn.conv2d(signs, siman_magnitude(tf.constant(kernel)), 1, "VALID").numpy()
    np.testing.assert_allclose(model(x).numpy(), plain * np.linspace(-2, 2, 8), rtol=1e-5,
                               atol=1e-5)
