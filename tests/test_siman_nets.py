"""SiMaN's networks, recipe and deployment: layouts per methods.md, no decay on
the binary kernels and scales, bitpacked export with parity on real images."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import export, zoo
from bnnzoo.export import flatbuffer
from bnnzoo.quantizers import ScaledQuantConv2D, SiManClip, SiManMagnitude, SiManSign
from bnnzoo.runs import load_model_file
from bnnzoo.zoo import recipes
from bnnzoo.training.config import TrainConfig
from bnnzoo.training.run import compile_model
from bnnzoo.zoo.binary_layers import binary_layers, binary_operations, undecayed_weights
from bnnzoo.zoo.siman import SiManResNet18, SubsampleZeroPad

from conftest import QUICK, requires_fashion_mnist, run_cli

SIMAN = ["siman_resnet18", "siman_resnet34", "siman_resnet20", "siman_resnet18_cifar",
         "siman_vgg_small"]
CIFAR = dict(input_shape=(32, 32, 3), num_classes=10)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def consumer(layer):
    (node,) = layer.outbound_nodes
    return node.outbound_layer


@pytest.mark.parametrize("name", SIMAN)
def test_every_binary_conv_is_simans(name):
    model = zoo.get_model(name, **CIFAR)
    layers = binary_layers(model)
    assert layers == binary_operations(model)
    assert all(type(layer) is ScaledQuantConv2D and not layer.use_bias for layer in layers)
    assert all(isinstance(layer.input_quantizer, SiManSign) for layer in layers)
    assert all(isinstance(layer.kernel_quantizer, SiManMagnitude) for layer in layers)
    assert all(isinstance(layer.kernel_constraint, SiManClip) for layer in layers)
    assert zoo.model_entry(name).recipe == ("siman_imagenet" if name in SIMAN[:2] else "siman")
    figures = {"siman_resnet20": 87.4, "siman_resnet18_cifar": 92.5,
               "siman_vgg_small": 92.5}  # CIFAR-10's; the others' are ImageNet's
    entry = zoo.model_entry(name)
    assert f"{entry.paper_top1} %" in entry.build.__doc__
    assert (entry.paper_top1_dataset == "CIFAR-10") == (name in figures)
    assert entry.paper_top1 == figures.get(name, entry.paper_top1)


@pytest.mark.parametrize("name, convs", [("siman_resnet18", 16), ("siman_resnet34", 32),
                                         ("siman_resnet20", 18)])
def test_per_conv_shortcut_then_prelu(name, convs):
    """x -> bconv -> BN -> (+ shortcut(x)) -> PReLU for every binary conv."""
    model = zoo.get_model(name, **CIFAR)
    layers = binary_layers(model)
    assert len(layers) == convs == len(layers_of(model, tf.keras.layers.Add))
    for layer in layers:
        assert layer.kernel_size == (3, 3)
        bn = consumer(layer)
        add = consumer(bn)
        assert isinstance(bn, tf.keras.layers.BatchNormalization)
        assert isinstance(add, tf.keras.layers.Add)
        assert isinstance(consumer(add), tf.keras.layers.PReLU)
        (other,) = [t for t in add.input if t is not bn.output]
        if layer.strides == (1, 1) and layer.input.shape[-1] == layer.filters:
            assert other is layer.input  # identity
        else:
            producer = other._keras_history.layer
            if name == "siman_resnet20":  # option A: no parameters
                assert isinstance(producer, SubsampleZeroPad)
            else:  # real strided 1x1 conv + BN
                conv = producer.input._keras_history.layer
                assert isinstance(producer, tf.keras.layers.BatchNormalization)
                assert type(conv) is tf.keras.layers.Conv2D and conv.kernel_size == (1, 1)
                source = conv.input  # through the crop that aligns it (test below)
                if isinstance(source._keras_history.layer, tf.keras.layers.Cropping2D):
                    source = source._keras_history.layer.input
                assert conv.strides == layer.strides and source is layer.input


def test_imagenet_layout_stem_and_batchnorm_init():
    model = zoo.get_model("siman_resnet18")  # 224x224x3, 1000 classes
    stem = layers_of(model, tf.keras.layers.Conv2D)[0]
    assert (stem.kernel_size, stem.strides) == ((7, 7), (2, 2))
    assert len(layers_of(model, tf.keras.layers.MaxPool2D)) == 1
    *body, head = layers_of(model, tf.keras.layers.BatchNormalization)
    assert all(np.allclose(bn.gamma.numpy(), 1e-8) for bn in body)  # the official init
    assert np.allclose(head.gamma.numpy(), 1.0) and head.output.shape[-1] == 512
    assert model.output_shape == (None, 1000)
    assert 11.6e6 < model.count_params() < 11.8e6  # ResNet-18's size plus alphas and PReLUs


def test_resnet20_is_the_cifar_resnet():
    model = zoo.get_model("siman_resnet20")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert [layer.filters for layer in binary_layers(model)] == [16] * 6 + [32] * 6 + [64] * 6
    assert 0.26e6 < model.count_params() < 0.28e6  # "ResNet20 | 20 layers | 0.27M"
    stem = layers_of(model, tf.keras.layers.Conv2D)[0]
    assert stem.kernel_size == (3, 3) and stem.filters == 16
    assert isinstance(consumer(consumer(stem)), tf.keras.layers.ReLU)


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    y = SubsampleZeroPad(7)(x).numpy()
    assert y.shape == (2, 2, 2, 7)
    np.testing.assert_array_equal(y[..., 2:5], x[:, 1::2, 1::2, :])  # even side: 1, 3
    assert not y[..., :2].any() and not y[..., 5:].any()


@pytest.mark.parametrize("side", [8, 7])
def test_strided_shortcuts_sample_where_the_strided_conv_centres(side):
    """Keras pads 'same' borders at the bottom/right only: on an even side a
    stride-2 3x3 conv centres on pixels 1, 3, ...; both shortcut kinds must too."""
    x = np.random.default_rng(0).normal(size=(1, side, side, 2)).astype("float32")
    identity = np.zeros((3, 3, 2, 2), "float32")
    identity[1, 1] = np.eye(2)
    conv = tf.keras.layers.Conv2D(2, 3, strides=2, padding="same", use_bias=False)
    conv.build(x.shape)
    conv.set_weights([identity])
    centres = conv(x).numpy()  # the input pixel under each output's kernel centre
    np.testing.assert_array_equal(SubsampleZeroPad(2)(x).numpy(), centres)
    factory = SiManResNet18(input_shape=(side, side, 2), input_tensor=None, weights=None,
                            include_top=False, num_classes=10)
    one_by_one = tf.keras.layers.Conv2D(2, 1, strides=2, padding="same", use_bias=False)
    y = one_by_one(factory.strided_1x1_input(factory.image_input, 2))
    one_by_one.set_weights([identity[1:2, 1:2]])
    np.testing.assert_array_equal(tf.keras.Model(factory.image_input, y)(x).numpy(), centres)


def test_resnet18_cifar_basic_blocks_with_binary_downsample():
    model = zoo.get_model("siman_resnet18_cifar")
    layers = binary_layers(model)
    three = [layer for layer in layers if layer.kernel_size == (3, 3)]
    ones = [layer for layer in layers if layer.kernel_size == (1, 1)]
    assert len(three) == 16 and len(ones) == 3 and len(layers_of(model, tf.keras.layers.Add)) == 8
    assert [layer.filters for layer in ones] == [128, 256, 512] and all(layer.strides == (2, 2) for layer in ones)
    assert not layers_of(model, tf.keras.layers.PReLU)  # hard tanh in this one


def test_vgg_small_layout():
    model = zoo.get_model("siman_vgg_small")
    assert [layer.filters for layer in binary_layers(model)] == [128, 256, 256, 512, 512]
    (conv0,) = [layer for layer in model.layers if type(layer) is tf.keras.layers.Conv2D]
    assert conv0.filters == 128 and conv0.kernel_size == (3, 3)
    assert len(layers_of(model, tf.keras.layers.MaxPool2D)) == 3
    assert layers_of(model, tf.keras.layers.Dense)[0].kernel.shape == (512 * 4 * 4, 10)


def compiled(recipe, weight_decay):
    model = zoo.get_model("siman_resnet20", input_shape=(8, 8, 1), num_classes=10)
    config = TrainConfig(model="siman_resnet20", epochs=1, steps_per_epoch=5, learning_rate=0.1,
                         weight_decay=weight_decay, label_smoothing=0.0, xla="off",
                         recipe=dataclasses.asdict(recipe))
    compile_model(model, config)
    kept = {id(w) for w in undecayed_weights(model)}
    assert len(kept) == 2 * 18  # 18 binary kernels + their 18 alphas
    return model, kept


def test_siman_recipe_decays_all_but_binary_kernels_and_scales_as_pytorch_does():
    """PyTorch's coupled decay: the loss gains wd/2 |w|^2, so each decayed
    weight's gradient gains wd * w; binary kernels and alphas gain nothing."""
    recipe = recipes.get_recipe("siman")
    assert (recipe.optimizer, recipe.learning_rate, recipe.momentum, recipe.schedule,
            recipe.weight_decay, recipe.weight_decay_mode) == ("sgd", 0.1, 0.9, "cosine", 5e-4,
                                                               "l2")
    model, kept = compiled(recipe, 5e-4)
    assert model.optimizer.weight_decay is None  # not twice
    with tf.GradientTape(persistent=True) as tape:
        penalty = tf.add_n(model.losses)
    for w in model.trainable_weights:
        grad = tape.gradient(penalty, w)
        if id(w) in kept:
            assert grad is None, w.name
        else:
            np.testing.assert_allclose(grad.numpy(), 5e-4 * w.numpy(), rtol=1e-5, atol=1e-12)


def test_decoupled_decay_skips_binary_kernels_and_scales():
    """One SGDW step with zero gradients: only the decay moves weights."""
    model, kept = compiled(dataclasses.replace(recipes.get_recipe("siman"),
                                               weight_decay_mode="decoupled"), 5e-4)
    assert not model.losses
    for layer in binary_layers(model):  # centre the kernels: the clip is then the identity
        layer.kernel_constraint.p.assign(0.0)
        layer.kernel.assign(layer.kernel_constraint(layer.kernel))
    before = {id(w): w.numpy() for w in model.trainable_weights}
    model.optimizer.apply_gradients([(tf.zeros_like(w), w) for w in model.trainable_weights])
    for w in model.trainable_weights:
        if id(w) in kept:
            np.testing.assert_allclose(w.numpy(), before[id(w)], rtol=1e-5, atol=1e-7)
        elif np.abs(before[id(w)]).max() > 0:
            np.testing.assert_allclose(w.numpy(), before[id(w)] * (1 - 0.1 * 5e-4), rtol=1e-6)


def test_alpha_and_batchnorm_fold_into_bconv_and_only_the_mean_stays_float():
    inp = tf.keras.Input((8, 8, 64))
    conv = ScaledQuantConv2D(64, 3, padding="same", pad_values=1.0, input_quantizer="siman_sign",
                             kernel_quantizer="siman_magnitude", use_bias=False)
    bn = tf.keras.layers.BatchNormalization()
    model = tf.keras.Model(inp, bn(conv(inp)))
    rng = np.random.default_rng(0)
    conv.alpha.assign(rng.uniform(0.5, 2, 64).astype("float32"))
    bn.set_weights([rng.uniform(0.5, 2, 64).astype("float32") for _ in range(4)])
    buf = export.export_flatbuffer(model, "arm64")
    assert flatbuffer.operator_histogram(buf) == {"MEAN": 1, "SUB": 1, "LceQuantize": 1,
                                                  "LceBconv2d": 1}
    x = rng.normal(size=(4, 8, 8, 64)).astype("float32")
    np.testing.assert_allclose(export.predict_flatbuffer(buf, x), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name, convs", [("siman_vgg_small", 5)])
def test_simans_wide_layers_bitpack(name, convs):
    """All of VGG-small's 128-512-channel kernels become LceBconv2d (the other
    nets, ResNet-18-CIFAR's binary 1x1 downsamples included:
    benchmarks/family_export.py --family siman)."""
    model = zoo.get_model(name, input_shape=(16, 16, 1), num_classes=10)
    buf = export.export_flatbuffer(model, "arm64")
    report = export.export_report(model, buf)
    assert report["binary_convolutions"] == {"keras": convs, "lce_bconv2d": convs,
                                             "not_bitpacked": []}
    ops = flatbuffer.operator_histogram(buf)
    assert not {"LceDequantize", "CAST", "RSQRT", "SQUARED_DIFFERENCE"} & set(ops)
    assert abs(report["size"]["vs_one_bit_budget"] - 1) < 0.05


@requires_fashion_mnist
def test_cli_trains_siman_resnet20_and_exports_it_bitpacked(tmp_path, invoke):
    runs, run_dir = tmp_path / "runs", tmp_path / "run"
    result = run_cli(runs, "train", "siman_resnet20", "--dataset", "fashion_mnist", "--epochs", "2",
                     "--steps-per-epoch", "40", "--output", run_dir, "--no-xla", *QUICK)
    assert result.returncode == 0, result.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["recipe"]["name"] == "siman" and config["recipe"]["optimizer"] == "sgd"
    assert config["learning_rate"] == pytest.approx(0.1 * 32 / 256)
    assert config["weight_decay"] == 5e-4
    history = json.loads((run_dir / "history.json").read_text())
    assert history[-1]["val_accuracy"] > 0.3  # chance is 0.1
    model = load_model_file(run_dir / "model.h5")  # p reached 0 on the last epoch
    assert {float(layer.kernel_constraint.p.numpy()) for layer in binary_layers(model)} == {0.0}
    loads = subprocess.run([sys.executable, "-c", "import sys, bnnzoo, tensorflow as tf; "
                            "tf.keras.models.load_model(sys.argv[1], compile=False)",
                            str(run_dir / "model.h5")], capture_output=True, text=True)
    assert loads.returncode == 0, loads.stderr  # plain Keras, once bnnzoo is imported

    result = invoke("export", run_dir, "--target", "arm64", runs=runs)
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "export" / "siman_resnet20-arm64.report.json").read_text())
    assert report["binary_convolutions"] == {"keras": 18, "lce_bconv2d": 18, "not_bitpacked": []}
    assert report["parity"]["top1_agreement"] >= 0.97  # on 256 real test images
