"""Bi-Real Net's quantizers against the paper's closed forms and larq's built-ins."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import quantizers
from bnnzoo.quantizers import BiRealApproxSign, BiRealMagnitudeAwareSign, magnitude_aware_sign

# Points on every piece of F, at its joints, and beyond.
POINTS = np.array([-3.0, -1.5, -1.0, -0.75, -0.5, -0.25, -1e-4, 0.0, 1e-4, 0.25, 0.5, 0.75,
                   1.0, 1.5, 3.0], dtype=np.float32)


def sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def approx_sign_grad(x):
    """dF/dx of F = -1 | 2x + x^2 | 2x - x^2 | 1 on (-inf,-1) [-1,0) [0,1) [1,inf)."""
    return np.where((x >= -1) & (x < 0), 2 + 2 * x, np.where((x >= 0) & (x < 1), 2 - 2 * x, 0.0))


def value_and_grad(fn, x, upstream=None):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = fn(x)
        target = y if upstream is None else y * upstream
    return y.numpy(), tape.gradient(target, x).numpy()


def test_approx_sign_forward_and_gradient_are_the_papers():
    y, g = value_and_grad(BiRealApproxSign(), POINTS)
    np.testing.assert_array_equal(y, sign(POINTS))
    assert y[POINTS == 0.0] == 1.0
    np.testing.assert_allclose(g, approx_sign_grad(POINTS), atol=1e-6)
    # The derivative of F is max(0, 2 - 2|x|) everywhere, zero at +-1 and beyond.
    np.testing.assert_allclose(g, np.maximum(0, 2 - 2 * np.abs(POINTS)), atol=1e-6)
    assert g[POINTS == 0.0] == 2.0
    assert np.all(g[np.abs(POINTS) >= 1] == 0)


def test_approx_sign_gradient_integrates_to_F():
    # F(x) - F(-1) = integral of dF/dx from -1 to x: check on a fine grid.
    xs = np.linspace(-1, 1, 20001, dtype=np.float32)
    _, g = value_and_grad(BiRealApproxSign(), xs)
    integral = np.concatenate([[0.0], np.cumsum((g[1:] + g[:-1]) / 2 * np.diff(xs))]) - 1
    F = np.where(xs < 0, 2 * xs + xs**2, 2 * xs - xs**2)
    np.testing.assert_allclose(integral, F, atol=1e-3)


def kernel(seed=0, shape=(3, 3, 4, 5), scale=0.8):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, scale, size=shape).astype(np.float32)
    w.flat[:4] = [0.0, 1.0, -1.0, 1.7]  # the joints and beyond
    return w


def test_magnitude_aware_sign_forward_is_alpha_times_sign():
    w = kernel()
    y, _ = value_and_grad(BiRealMagnitudeAwareSign(), w)
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(y, alpha * sign(w), rtol=1e-6)
    assert alpha.shape == (5,)  # one scale per output channel


def test_magnitude_aware_gradient_has_alpha_factor_and_clip_mask():
    w = kernel()
    upstream = np.random.default_rng(1).normal(size=w.shape).astype(np.float32)
    _, g = value_and_grad(BiRealMagnitudeAwareSign(), w, upstream)
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    expected = upstream * alpha * (np.abs(w) <= 1)
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-7)
    assert g.flat[3] == 0.0  # |W| = 1.7: masked
    assert g.flat[1] != 0.0 and g.flat[2] != 0.0  # |W| = 1: inside the mask
    # Without the alpha factor (the official PyTorch code) the test would see this:
    assert not np.allclose(g, upstream * (np.abs(w) <= 1))


def test_pure_function_equals_the_quantizer():
    w = tf.constant(kernel(2))
    np.testing.assert_array_equal(magnitude_aware_sign(w).numpy(), BiRealMagnitudeAwareSign()(w).numpy())


@pytest.mark.parametrize("ours, theirs", [
    (BiRealApproxSign(), lq.quantizers.ApproxSign()),
    (BiRealMagnitudeAwareSign(), lq.quantizers.MagnitudeAwareSign()),
])
def test_agree_with_larqs_builtins(ours, theirs):
    w = kernel(3)
    upstream = np.random.default_rng(4).normal(size=w.shape).astype(np.float32)
    y1, g1 = value_and_grad(ours, w, upstream)
    y2, g2 = value_and_grad(theirs, w, upstream)
    np.testing.assert_allclose(y1, y2, rtol=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-6)


@pytest.mark.parametrize("name, cls", [
    ("bireal_approx_sign", BiRealApproxSign),
    ("bireal_magnitude_aware_sign", BiRealMagnitudeAwareSign),
])
def test_registered_by_name(name, cls):
    assert isinstance(lq.quantizers.get(name), cls)
    assert cls().precision == 1


def test_layer_with_quantizers_by_name_survives_save_and_load(tmp_path):
    layer = lq.layers.QuantConv2D(
        4, 3, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer="bireal_approx_sign", kernel_quantizer="bireal_magnitude_aware_sign",
    )
    model = tf.keras.Sequential([tf.keras.Input((6, 6, 2)), layer])
    x = np.random.default_rng(5).normal(size=(2, 6, 6, 2)).astype(np.float32)
    path = tmp_path / "m.h5"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert isinstance(loaded.layers[0].input_quantizer, BiRealApproxSign)
    assert isinstance(loaded.layers[0].kernel_quantizer, BiRealMagnitudeAwareSign)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_hard_tanh_clips_and_passes_the_gradient_inside():
    x = tf.constant([-2.0, -1.0, -0.3, 0.0, 0.7, 1.0, 1.5])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantizers.BiRealHardTanh()(x)
    np.testing.assert_allclose(y, [-1, -1, -0.3, 0, 0.7, 1, 1], atol=1e-7)
    np.testing.assert_allclose(tape.gradient(y, x), [0, 1, 1, 1, 1, 1, 0])
    assert quantizers.BiRealHardTanh.precision == 32
    assert isinstance(lq.quantizers.get("bireal_hard_tanh"), quantizers.BiRealHardTanh)


def leaky_clip_closed_form(x, slope=0.1):
    """x on [-1, 1], sign(x) (1 + slope (|x| - 1)) outside; derivative 1 and slope."""
    value = np.where(np.abs(x) <= 1, x, np.sign(x) * (1 + slope * (np.abs(x) - 1)))
    return value, np.where(np.abs(x) <= 1, 1.0, slope)


@pytest.mark.parametrize("slope", [0.1, 0.25])
def test_leaky_clip_value_and_gradient_are_the_closed_form(slope):
    """Bi-Real-50's leaky clip: 0.1x - 0.9 below -1, 0.1x + 0.9 above 1 (the authors'
    ``Leakyclip``), the identity between, with gradient 1 up to |x| = 1 included."""
    upstream = np.linspace(0.5, 2.0, POINTS.size).astype(np.float32)
    y, g = value_and_grad(quantizers.BiRealLeakyClip(slope), POINTS, upstream)
    value, grad = leaky_clip_closed_form(POINTS, slope)
    np.testing.assert_allclose(y, value, atol=1e-6)
    np.testing.assert_allclose(g, grad * upstream, atol=1e-6)
    if slope == 0.1:
        np.testing.assert_allclose(y[POINTS == 3.0], 0.1 * 3 + 0.9, atol=1e-6)
        np.testing.assert_allclose(y[POINTS == -1.5], 0.1 * -1.5 - 0.9, atol=1e-6)
    np.testing.assert_array_equal(y, quantizers.leaky_clip(tf.constant(POINTS), slope).numpy())


def test_leaky_clip_is_registered_and_survives_save_and_load(tmp_path):
    assert isinstance(lq.quantizers.get("bireal_leaky_clip"), quantizers.BiRealLeakyClip)
    assert quantizers.BiRealLeakyClip.precision == 32
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, quantizers.BiRealLeakyClip(0.2)(inputs))
    model.save(tmp_path / "m.h5")
    loaded = tf.keras.models.load_model(tmp_path / "m.h5")
    assert isinstance(loaded.layers[-1], quantizers.BiRealLeakyClip)
    assert loaded.layers[-1].slope == 0.2
    x = np.array([[-4.0, -0.5, 0.5, 4.0]], dtype=np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), [[-1.6, -0.5, 0.5, 1.6]], atol=1e-6)
