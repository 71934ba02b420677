"""The border-corrected convolution computes larq's constant-padded convolution:
same values, same input and kernel gradients, in training; larq's own graph
(with the Pad LCE fuses) in inference."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnnzoo.quantizers import BorderCorrectedQuantConv2D, ScaledQuantConv2D


def outputs_and_gradients(layer, x, upstream, training):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * upstream)
    grad_x, grad_w = tape.gradient(loss, [x, layer.kernel])
    return y.numpy(), grad_x.numpy(), grad_w.numpy()


@pytest.mark.parametrize("strides, side, kernel_size", [(1, 7, 3), (2, 8, 3), (2, 7, 3), (1, 6, 5)])
@pytest.mark.parametrize("pad_values", [1.0, -1.0])
@pytest.mark.parametrize("kernel_quantizer", ["bireal_magnitude_aware_sign", "ste_sign"])
def test_values_and_gradients_equal_larqs_padded_convolution(strides, side, kernel_size, pad_values,
                                                             kernel_quantizer):
    kwargs = dict(filters=5, kernel_size=kernel_size, strides=strides, padding="same",
                  pad_values=pad_values, input_quantizer="bireal_approx_sign",
                  kernel_quantizer=kernel_quantizer, kernel_constraint="weight_clip",
                  use_bias=False)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, side, side, 3)).astype(np.float32)
    larq_layer, layer = lq.layers.QuantConv2D(**kwargs), BorderCorrectedQuantConv2D(**kwargs)
    larq_layer.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(larq_layer.get_weights())
    upstream = rng.standard_normal(larq_layer(x).shape).astype(np.float32)
    expected = outputs_and_gradients(larq_layer, x, upstream, training=True)
    corrected = outputs_and_gradients(layer, x, upstream, training=True)
    for want, got in zip(expected, corrected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # The border matters: without it the outputs at the edges differ.
    zero_padded = lq.layers.QuantConv2D(**{**kwargs, "pad_values": 0.0})
    zero_padded.build(x.shape)
    zero_padded.set_weights(larq_layer.get_weights())
    assert np.abs(zero_padded(x).numpy() - expected[0]).max() > 0.1
    # Inference is larq's own path, to the bit.
    inference = outputs_and_gradients(layer, x, upstream, training=False)
    for want, got in zip(expected, inference):
        np.testing.assert_array_equal(got, want)


def graph_ops(layer, shape, training):
    fn = tf.function(lambda x: layer(x, training=training))
    graph = fn.get_concrete_function(tf.TensorSpec(shape)).graph
    return [op.type for op in graph.get_operations()]


def test_training_pads_one_image_and_inference_pads_the_batch():
    layer = BorderCorrectedQuantConv2D(8, 3, padding="same", pad_values=1.0,
                                       input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                       kernel_constraint="weight_clip", use_bias=False)
    layer.build((None, 6, 6, 4))
    assert graph_ops(layer, (16, 6, 6, 4), True).count("Conv2D") == 2  # batch + border
    inference = graph_ops(layer, (16, 6, 6, 4), False)
    assert inference.count("Conv2D") == 1 and "PadV2" in inference


def test_siman_scaled_convolution_is_border_corrected_and_scaled():
    kwargs = dict(filters=4, kernel_size=3, padding="same", pad_values=1.0,
                  input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 3)).astype(np.float32)
    layer = ScaledQuantConv2D(**kwargs)
    layer.build(x.shape)
    layer.alpha.assign([0.5, 1.0, 2.0, 3.0])
    larq_layer = lq.layers.QuantConv2D(**kwargs)
    larq_layer.build(x.shape)
    larq_layer.set_weights(layer.get_weights()[:1])
    np.testing.assert_allclose(layer(x, training=True).numpy(),
                               larq_layer(x).numpy() * [0.5, 1.0, 2.0, 3.0], rtol=1e-5, atol=1e-5)
