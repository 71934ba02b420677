"""larq-zoo's models in the registry: built by larq-zoo, trained with its
tasks' values, exported bitpacked, its ImageNet weights through its loader.

Kept cheap: each entry's delegation to larq-zoo is checked without building
(larq-zoo's function replaced by a recorder); real builds are the few that
exercise something of ours: the least input on the two models that needed
``zoo.input_side``'s fixes, one export, DoReFa-Net's refusal."""

import json

import larq as lq
import larq_zoo
import numpy as np
import pytest
import tensorflow as tf

from conftest import assert_one_clear_error
from bnnzoo import zoo
from bnnzoo.export import export_flatbuffer, export_report, parity_report
from bnnzoo.export import large_kernels
from bnnzoo.training import optimisation
from bnnzoo.zoo import recipes
from bnnzoo.zoo.binary_layers import binary_operations
from bnnzoo.zoo.larq_zoo_models import LARQ_ZOO_MODELS, WeightsUnavailable

#: registry name -> larq-zoo's public function (written out, not read from the module under test)
LARQ_ZOO = {
    "quicknet_small": larq_zoo.sota.QuickNetSmall, "quicknet": larq_zoo.sota.QuickNet,
    "quicknet_large": larq_zoo.sota.QuickNetLarge, "xnornet": larq_zoo.literature.XNORNet,
    "binary_alexnet": larq_zoo.literature.BinaryAlexNet,
    "binary_resnet_e18": larq_zoo.literature.BinaryResNetE18,
    "binary_densenet28": larq_zoo.literature.BinaryDenseNet28,
    "binary_densenet37": larq_zoo.literature.BinaryDenseNet37,
    "binary_densenet45": larq_zoo.literature.BinaryDenseNet45,
    "meliusnet22": larq_zoo.literature.MeliusNet22, "dorefanet": larq_zoo.literature.DoReFaNet,
}


def test_the_registry_holds_every_larq_zoo_model():
    assert sorted(LARQ_ZOO_MODELS) == sorted(LARQ_ZOO)
    assert set(LARQ_ZOO) <= set(zoo.list_models())


@pytest.mark.parametrize("name", sorted(LARQ_ZOO))
def test_each_entry_returns_what_larq_zoos_own_function_builds(name, monkeypatch):
    """The entry calls larq-zoo's function with the caller's arguments (the
    registry's defaults: random weights, 1000 classes) and returns its model
    untouched; it carries larq-zoo's published metrics and a training recipe."""
    function = LARQ_ZOO[name]
    module = larq_zoo.sota if function.__module__.startswith("larq_zoo.sota") else larq_zoo.literature
    calls, built = [], object()

    def recorder(**kwargs):
        calls.append(kwargs)
        return built

    monkeypatch.setattr(module, function.__name__, recorder)
    assert zoo.get_model(name, input_shape=(64, 64, 3), num_classes=10) is built
    assert zoo.get_model(name) is built
    assert calls == [
        dict(input_shape=(64, 64, 3), input_tensor=None, weights=None, include_top=True,
             num_classes=10),
        dict(input_shape=None, input_tensor=None, weights=None, include_top=True,
             num_classes=1000)]
    entry = zoo.model_entry(name)
    assert entry.larq_zoo == f"{function.__module__.rsplit('.', 1)[0]}.{function.__name__}"
    top1 = [line for line in function.__doc__.splitlines() if "%" in line][0].strip()
    assert top1 in entry.build.__doc__  # larq-zoo's metrics row, quoted
    recipes.get_recipe(entry.recipe)
    with pytest.raises(ValueError, match="one width"):
        zoo.get_model(name, filters=32)


def test_an_entry_builds_larq_zoos_layers_and_parameters():
    """One real build through the registry against larq-zoo's own, at a small input."""
    ours = zoo.get_model("dorefanet", input_shape=(44, 44, 3), num_classes=10)
    theirs = larq_zoo.literature.DoReFaNet(input_shape=(44, 44, 3), weights=None, num_classes=10)
    assert [type(layer) for layer in ours.layers] == [type(layer) for layer in theirs.layers]
    assert ours.count_params() == theirs.count_params() and ours.output_shape == (None, 10)


def test_least_input_through_split_layers_and_fixed_windows(invoke):
    """The two graphs that needed ``zoo.input_side``'s fixes. MeliusNet-22's
    grouped stem splits its input (a layer with several outputs): least 17.
    XNOR-Net's last max-pool and 6x6 "valid" convolution are as wide as their
    input at 224 px but fixed windows, not global poolings: least 217, above
    the small-image search limit; at 64 px it does not build, and training
    reads its least input at 224."""
    from bnnzoo.training import TrainConfig
    from bnnzoo.training.run import build_model

    result = invoke("train", "meliusnet22", "--input-size", "16", "--epochs", "1",
                    "--steps-per-epoch", "1", "--batch-size", "2")
    assert_one_clear_error(result, "meliusnet22 cannot use 16x16", "at least 17x17")
    config = TrainConfig(model="xnornet", input_shape=(64, 64, 1), num_classes=10,
                         precision="float32")
    with pytest.raises(ValueError, match="xnornet cannot use 64x64 inputs: .* at least 217x217"):
        build_model(config)
    xnornet = zoo.get_model("xnornet", input_shape=(217, 217, 3), num_classes=10)
    assert zoo.smallest_input_side(xnornet) == 217
    # Its 6x6x256x4096 kernel is the one the converter cannot fold (test below).
    sixes = [layer for layer in binary_operations(xnornet) if layer.kernel_size == (6, 6)]
    assert [layer.name for layer in xnornet.layers if large_kernels.too_large_to_fold(layer)] \
        == [layer.name for layer in sixes] and len(sixes) == 1


def test_imagenet_weights_go_through_larq_zoos_loader(tmp_path, monkeypatch):
    """No internet here: the download fails, as one error naming the file's
    source and larq-zoo's cache folder (where an offline copy goes)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    calls = []
    real = larq_zoo.core.utils.download_pretrained_model

    def offline(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(larq_zoo.core.utils, "download_pretrained_model", offline)
    with pytest.raises(WeightsUnavailable, match=r"larq-zoo's releases .* put the release file "
                                                 r"in .*larq/models/"):
        zoo.get_model("binary_resnet_e18", weights="imagenet")
    assert calls[0]["file"] == "resnet_e_18_weights.h5"  # larq-zoo's own file and hash
    assert len(calls[0]["file_hash"]) == 64


def test_quicknet_recipe_is_larq_zoos_two_optimiser_task():
    """Adam on the binary kernels at 1e-2, SGD with momentum on the rest at 0.1
    (at batch 2048, scaled with the batch), cosine after a warm-up."""
    recipe = recipes.get_recipe("quicknet")
    assert (recipe.epochs, recipe.batch_size, recipe.warmup_epochs) == (600, 2048, 5)
    optimizer = optimisation.make_optimizer(recipe, learning_rate=0.1 * 256 / 2048, total_steps=100,
                                       steps_per_epoch=10, weight_decay=0.0)
    assert isinstance(optimizer, lq.optimizers.CaseOptimizer)
    (predicate, binary), default = optimizer.pred_opt_pairs[0], optimizer.default
    assert predicate is lq.optimizers.Bop.is_binary_variable
    assert binary.learning_rate.warmup_target == pytest.approx(1e-2 * 256 / 2048)
    assert default.learning_rate.warmup_target == pytest.approx(0.1 * 256 / 2048)
    assert type(binary).__name__ == "Adam" and type(default).__name__ == "SGD"
    # XNOR-Net's rate falls by larq-zoo's factors, not powers of one factor.
    xnor = recipes.get_recipe("xnornet")
    schedule = optimisation.make_schedule(xnor, 1e-3, 100, 1)
    assert float(schedule(25)) == pytest.approx(5e-4) and float(schedule(50)) == pytest.approx(5e-5)


def _whole_input_xnor_convolution(channels, filters, seed=0, kernel_quantizer="xnor"):
    """XNOR-Net's 6x6 "valid" convolution (larq-zoo's ``xnor_weight_scale``
    kernel quantizer, or larq's ``ste_sign`` as BinaryAlexNet's rewritten dense
    layers have) on a 6x6 map, between batch norms as in XNOR-Net, and a
    small head."""
    from larq_zoo.literature.xnornet import xnor_weight_scale

    if kernel_quantizer == "xnor":
        kernel_quantizer = xnor_weight_scale
    tf.keras.utils.set_random_seed(seed)
    image = tf.keras.Input((6, 6, channels))
    x = tf.keras.layers.BatchNormalization(scale=False)(image)
    x = lq.layers.QuantConv2D(filters, 6, padding="valid", input_quantizer="ste_sign",
                              kernel_quantizer=kernel_quantizer,
                              kernel_constraint="weight_clip", use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization(scale=False)(x)
    x = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(image, tf.keras.layers.Dense(10)(x))


def test_a_kernel_too_large_to_fold_stays_float_as_it_is(monkeypatch):
    """XNOR-Net's own layer size, 6x6x256x4096 (37.7M values, 151 MB): above
    TensorFlow's constant-folding limit its quantizer is not folded, and
    without ``large_kernels`` the convolution stays a float CONV_2D (issue 744)."""
    model = _whole_input_xnor_convolution(256, 4096)
    (layer,) = binary_operations(model)
    assert large_kernels.too_large_to_fold(layer)
    monkeypatch.setattr(large_kernels, "FOLDING_LIMIT_BITS", 1 << 62)  # the rewrite off
    report = export_report(model, export_flatbuffer(model, "arm64"))
    assert report["binary_convolutions"]["not_bitpacked"] == [layer.name]
    assert "LceBconv2d" not in report["operators"] and report["operators"]["CONV_2D"] == 1


@pytest.mark.parametrize("quantizer", ["xnor", "ste_sign"])
def test_a_kernel_quantized_before_conversion_becomes_lce_bconv2d(monkeypatch, quantizer):
    """The rewrite on a small layer (the limit lowered below it): the layer's
    kernel becomes its quantized value, outputs unchanged, and the converter
    makes it one LceBconv2d whose flatbuffer is faithful to the Keras model.
    larq's ``ste_sign`` has a custom gradient, which refuses a variable as
    its input: the kernel's value goes in. (The real XNOR-Net and
    BinaryAlexNet: README's deployment table.)"""
    model = _whole_input_xnor_convolution(32, 64, kernel_quantizer=quantizer)
    (layer,) = binary_operations(model)
    assert not large_kernels.too_large_to_fold(layer)
    monkeypatch.setattr(large_kernels, "FOLDING_LIMIT_BITS", 6 * 6 * 32 * 64 * 32 - 1)
    rewritten, names = large_kernels.quantize_large_kernels(model)
    assert names == [layer.name] and rewritten.get_layer(layer.name).kernel_quantizer is None
    kernel = rewritten.get_layer(layer.name).kernel.numpy()
    np.testing.assert_allclose(np.abs(kernel), np.abs(kernel).max(axis=(0, 1, 2)) + 0 * kernel)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 6, 6, 32)).astype("float32")
    np.testing.assert_array_equal(model(images, training=False), rewritten(images, training=False))

    buf = export_flatbuffer(model, "arm64")
    report = export_report(model, buf)
    assert report["operators"]["LceBconv2d"] == 1 and "CONV_2D" not in report["operators"]
    assert report["binary_convolutions"]["not_bitpacked"] == []
    assert parity_report(model, buf, images)["noise_floor"]["faithful"]


def test_quicknet_small_saved_by_the_registry_exports_through_the_cli(tmp_path, invoke):
    """The .h5 file keeps larq-zoo's blurpool initializer; ``cli.py export``
    reads it and proves every binary convolution bitpacked."""
    path = tmp_path / "quicknet_small.h5"
    model = zoo.get_model("quicknet_small", input_shape=(45, 45, 3), num_classes=10)
    model.save(path, save_format="h5")
    result = invoke("export", path, "--target", "arm64", "--parity-images", "8")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "quicknet_small-arm64.report.json").read_text())
    assert report["binary_convolutions"]["keras"] == len(binary_operations(model)) == 16
    assert report["operators"]["LceBconv2d"] == 16
    assert report["binary_convolutions"]["not_bitpacked"] == []


def test_dorefanet_is_refused_by_export_with_the_reason(tmp_path, invoke):
    """2-bit activations: nothing LCE can bitpack, one clear error."""
    path = tmp_path / "dorefanet.h5"
    zoo.get_model("dorefanet", input_shape=(44, 44, 3), num_classes=10).save(path, save_format="h5")
    result = invoke("export", path, "--target", "arm64")
    assert_one_clear_error(result, "no binary layers")
