"""The switch from real to binary weights keeps what the real stage learned
(training.switch): magnitudes carried, BatchNorm statistics re-estimated."""

import dataclasses

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import zoo
from bnnzoo.training import run as training_run
from bnnzoo.training.config import TrainConfig, resolve
from bnnzoo.training.hardware import precision_scope
from bnnzoo.training.initialise import initialise_from
from bnnzoo.training.switch import (begin_binary_stage, magnitude, switched_convolutions)
from bnnzoo.zoo.binary_layers import binary_operations, undecayed_weights
from bnnzoo.zoo.variants import variant
from conftest import requires_fashion_mnist

SMALL = dict(input_shape=(14, 14, 1), num_classes=10, filters=16)


def test_magnitude_is_the_least_squares_channel_scale_and_folds_exactly(capsys):
    real = variant(zoo.get_model("real2bin_baseline", **SMALL), "binary_activations")
    binary = zoo.get_model("real2bin_baseline", **SMALL)
    initialise_from(binary, real)
    convs = switched_convolutions(binary, real)
    assert convs == binary_operations(binary)  # all 16, and none in the real net
    assert not switched_convolutions(binary, binary)
    kernel = convs[0].kernel.numpy()
    np.testing.assert_allclose(magnitude(convs[0]), np.abs(kernel).mean(axis=(0, 1, 2)),
                               rtol=1e-5)  # sign: s_c = mean_c |W|
    bireal = zoo.get_model("bireal18", **SMALL)  # alpha_c sign(W): nothing to carry
    np.testing.assert_allclose(magnitude(binary_operations(bireal)[0]), 1.0, rtol=1e-5)
    # The carried scale makes the binary branch the least-squares fit of the real one.
    x = np.random.default_rng(0).normal(size=(2, 14, 14, 1)).astype("float32")
    probe = [tf.keras.Model(m.input, m.get_layer("real2bin_baseline_block_2a_rescale").output)
             for m in (real, binary)]
    before = probe[1](x).numpy()
    assert begin_binary_stage(binary, real) == 16
    after = probe[1](x).numpy()
    s = magnitude(convs[0])
    np.testing.assert_allclose(after, before * s, rtol=1e-4, atol=1e-6)
    assert "weight magnitudes carried into the per-channel scale after 16." in \
        capsys.readouterr().out
    # A BatchNorm after the convolution takes s_c into its inference statistics.
    norm = tf.keras.layers.BatchNormalization()
    y = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    norm(y)
    norm.set_weights([np.ones(3), np.zeros(3), np.array([0.5, -1, 2]), np.array([2., 3, 4])])
    reference = norm(y * np.array([0.1, 0.2, 0.3]), training=False).numpy()
    from bnnzoo.training.switch import _carry
    _carry(norm, np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(norm(y, training=False), reference, rtol=1e-5, atol=1e-5)
    # real2bin's gate leaves nowhere to carry it, and the console says so.
    gated_real = variant(zoo.get_model("real2bin", **SMALL), "binary_activations")
    gated = zoo.get_model("real2bin", **SMALL)
    initialise_from(gated, gated_real)
    begin_binary_stage(gated, gated_real)
    assert "scale after 0 (16 have none)." in capsys.readouterr().out


def test_magnitude_is_computed_in_float32_under_a_bfloat16_policy():
    """A bfloat16 run's quantizers compute in bfloat16; s_c is still the float32
    kernels' (mean |W_c| for sign, exactly 1 for Bi-Real's magnitude-aware sign)."""
    with precision_scope("bfloat16"):
        baseline = zoo.get_model("real2bin_baseline", **SMALL)
        bireal = zoo.get_model("bireal18", **SMALL)
    conv = binary_operations(baseline)[0]
    assert conv.kernel_quantizer.compute_dtype == "bfloat16"
    np.testing.assert_allclose(magnitude(conv), np.abs(conv.kernel.numpy()).mean(axis=(0, 1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(magnitude(binary_operations(bireal)[0]), 1, rtol=1e-5)


@requires_fashion_mnist
@pytest.mark.parametrize("model, final, plain, lost", [
    ("real2bin_baseline", "binary", "binary", 0.05),
    ("real2bin", "magnitude_weights", "binary", 0.05),
    ("reactnet_resnet18", "binary", None, 0.2)])
def test_binary_stage_starts_where_the_real_weight_stage_ended(tmp_path, monkeypatch, model,
                                                               final, plain, lost):
    """The strong baseline's step 1 (binary activations, real weights), 150
    steps at 14 px, then step 2 (fully binary) from it: with the switch it
    starts within a few points of step 1 on 500 test images; without, near
    chance. Real-to-Binary's stage 2 to 3 likewise: its gated convolutions
    have no scale to carry the magnitudes into, so its recipes' final stage
    takes alpha_c sign(W) (``magnitude_weights``); plain sign(W) starts near
    chance. ReActNet's step 1 to step 2 likewise (its kernels are
    alpha_c sign(W) already, whose magnitude needs no carrying), within the points
    Bi-Real-18's layout loses when its weights turn binary at this budget
    (measured: bireal18 0.70 -> 0.61, reactnet_resnet18 0.73 -> 0.58 and
    0.70 -> 0.60): no learned scale after its convolutions absorbs the change
    of direction, as the strong baseline's does."""
    from bnnzoo import datasets
    from bnnzoo.runs import load_model_file
    from bnnzoo.zoo.recipes import get_recipe

    assert get_recipe(zoo.model_entry(model).recipe).final_stage_variant == final  # its runs' final
    data = datasets.load("fashion_mnist")
    config = resolve(TrainConfig(
        model=model, input_size=14, width=16, epochs=1, steps_per_epoch=150,
        batch_size=32, validation_steps=1, xla="off", precision="float32",
        variant="binary_activations", learning_rate=2e-3), data)
    training_run.train_run(config, data, tmp_path / "step1", verbose=0)
    test = datasets.pipeline(data, "test", image_shape=config.input_shape, batch_size=100).take(5)
    images = np.concatenate([x for x, _ in test])
    labels = np.concatenate([np.reshape(y, (len(y), -1)) for _, y in test])
    labels = labels.argmax(-1) if labels.shape[1] > 1 else labels[:, 0]

    def accuracy(model):
        return float(np.mean(model.predict(images, verbose=0).argmax(-1) == labels))

    step1 = accuracy(load_model_file(tmp_path / "step1" / "model.h5"))
    binary = dataclasses.replace(config, variant=final, init_from=str(tmp_path / "step1"))
    switched = accuracy(training_run.prepare_model(binary, tmp_path / "a", data))
    assert step1 > 0.4, step1
    assert switched > step1 - lost, (step1, switched)
    if plain:
        monkeypatch.setattr(training_run, "begin_binary_stage", lambda *args: 0)
        unswitched = accuracy(training_run.prepare_model(
            dataclasses.replace(binary, variant=plain), tmp_path / "b", data))
        assert unswitched < 0.25, (step1, unswitched)  # chance is 0.1


class Gain(tf.keras.layers.Layer):
    """A layer new to the switch: a per-channel gain under a name of its own."""

    channel_scale = "gain"

    def build(self, input_shape):
        self.gain = self.add_weight(name="gain", shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.gain


class GainedConv(lq.layers.QuantConv2D):
    """A binary convolution scaling its own output, under another name than SiMaN's alpha,
    and exempting that scale from weight decay."""

    channel_scale = "gamma"
    weight_decay_exempt = ("gamma",)

    def build(self, input_shape):
        super().build(input_shape)
        self.gamma = self.add_weight(name="gamma", shape=(self.filters,), initializer="ones")

    def call(self, inputs):
        return super().call(inputs) * self.gamma


@pytest.mark.parametrize("conv, after", [(lq.layers.QuantConv2D, Gain), (GainedConv, None)])
def test_the_switch_carries_the_magnitude_into_any_layer_stating_its_channel_scale(conv, after):
    """The switch asks a layer for its ``channel_scale``: a gain after the
    convolution (through a PReLU) or the convolution's own scale receives s_c,
    whatever the weight is called."""
    def net(kernel_quantizer):
        inputs = tf.keras.Input((6, 6, 2))
        x = conv(4, 3, padding="same", input_quantizer="ste_sign",
                 kernel_quantizer=kernel_quantizer, use_bias=False)(inputs)
        x = tf.keras.layers.PReLU(shared_axes=[1, 2])(x)
        if after is not None:
            x = after()(x)
        return tf.keras.Model(inputs, tf.keras.layers.Flatten()(x))

    real, binary = net(None), net("ste_sign")
    initialise_from(binary, real)
    (switched,) = switched_convolutions(binary, real)
    s = magnitude(switched)
    np.testing.assert_allclose(s, np.abs(switched.kernel.numpy()).mean(axis=(0, 1, 2)),
                               rtol=1e-5)
    assert begin_binary_stage(binary, real) == 1
    (scale,) = [w for w in binary.weights if w.name.split("/")[-1].split(":")[0]
                in ("gain", "gamma")]
    np.testing.assert_allclose(scale.numpy(), s, rtol=1e-6)
    exempt = {id(w) for w in undecayed_weights(binary)}
    assert exempt == {id(switched.kernel)} | ({id(scale)} if after is None else set())
