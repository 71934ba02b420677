"""larq-zoo's models in the registry: built by larq-zoo, trained with its
tasks' values, exported bitpacked, its ImageNet weights through its loader."""

import json

import larq as lq
import larq_zoo
import pytest
import tensorflow as tf

from conftest import assert_one_clear_error
from bnnzoo import zoo
from bnnzoo.export import export_flatbuffer, export_report
from bnnzoo.export.dense_as_conv import binary_dense_as_conv
from bnnzoo.training import recipes
from bnnzoo.zoo.binary_layers import binary_operations
from bnnzoo.zoo.larq_zoo_models import LARQ_ZOO_MODELS, WeightsUnavailable

#: the least input of each (zoo.input_side reads it from the graph), and a
#: small input each builds at in the test
LEAST = {"quicknet_small": 45, "quicknet": 45, "quicknet_large": 45, "xnornet": 217,
         "binary_alexnet": 57, "binary_resnet_e18": 17, "binary_densenet28": 29,
         "binary_densenet37": 29, "binary_densenet45": 29, "meliusnet22": 17, "dorefanet": 44}


def _layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("name", sorted(LARQ_ZOO_MODELS))
def test_each_larq_zoo_entry_is_larq_zoos_own_model(name):
    """Built through the registry at a small input (64 px, or XNOR-Net's least,
    217), it is the model larq-zoo's function builds: the same layers in the same
    order and the same parameter count; its least input is stated."""
    entry = zoo.model_entry(name)
    assert entry.larq_zoo == f"larq_zoo.{LARQ_ZOO_MODELS[name][0]}"
    side = max(64, LEAST[name])
    shape = (side, side, 3)
    ours = zoo.get_model(name, input_shape=shape, num_classes=10)
    module, function = LARQ_ZOO_MODELS[name][0].split(".")
    theirs = getattr(getattr(larq_zoo, module), function)(input_shape=shape, weights=None,
                                                         num_classes=10)
    assert _layer_kinds(ours) == _layer_kinds(theirs)
    assert ours.count_params() == theirs.count_params()
    assert ours.output_shape == (None, 10)
    assert zoo.smallest_input_side(ours) == LEAST[name]
    recipes.get_recipe(entry.recipe)
    tf.keras.backend.clear_session()


def test_larq_zoo_models_refuse_a_width_and_inputs_too_small(invoke):
    with pytest.raises(ValueError, match="one width"):
        zoo.get_model("quicknet", filters=32)
    from bnnzoo.training import TrainConfig
    from bnnzoo.training.run import build_model

    # XNOR-Net does not even build at 64 px: the least is read at 224.
    for name, side in (("quicknet_small", 44), ("xnornet", 64)):
        config = TrainConfig(model=name, input_shape=(side, side, 1), num_classes=10,
                             precision="float32")
        with pytest.raises(ValueError, match=f"{name} cannot use {side}x{side} inputs: .* at "
                                             f"least {LEAST[name]}x{LEAST[name]}"):
            build_model(config)
    result = invoke("train", "quicknet_small", "--input-size", "32", "--epochs", "1",
                    "--steps-per-epoch", "1", "--batch-size", "2")
    assert_one_clear_error(result, "quicknet_small cannot use 32x32", "at least 45x45")


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
    optimizer = recipes.make_optimizer(recipe, learning_rate=0.1 * 256 / 2048, total_steps=100,
                                       steps_per_epoch=10, weight_decay=0.0)
    assert isinstance(optimizer, lq.optimizers.CaseOptimizer)
    (predicate, binary), default = optimizer.pred_opt_pairs[0], optimizer.default
    assert predicate is lq.optimizers.Bop.is_binary_variable
    assert binary.learning_rate.warmup_target == pytest.approx(1e-2 * 256 / 2048)
    assert default.learning_rate.warmup_target == pytest.approx(0.1 * 256 / 2048)
    assert type(binary).__name__ == "Adam" and type(default).__name__ == "SGD"
    # XNOR-Net's rate falls by larq-zoo's factors, not powers of one factor.
    xnor = recipes.get_recipe("xnornet")
    schedule = recipes.make_schedule(xnor, 1e-3, 100, 1)
    assert float(schedule(25)) == pytest.approx(5e-4) and float(schedule(50)) == pytest.approx(5e-5)


def _bitpacked(model):
    converted, dense = binary_dense_as_conv(model)
    report = export_report(converted, export_flatbuffer(converted, "arm64"))
    return report, dense


def test_xnornet_exports_bitpacked_but_its_whole_input_convolution():
    """larq-zoo's XNOR-Net at its least input: five of its six binary
    convolutions become LceBconv2d; the 6x6 "valid" one on a 6x6 map (a dense
    layer in disguise) is lowered by TensorFlow's converter to a float
    FULLY_CONNECTED, and the proof names it, so ``export`` refuses the file
    rather than ship 37.7M float weights as if bitpacked."""
    from bnnzoo.export.report import ExportError, check_report

    model = zoo.get_model("xnornet", input_shape=(217, 217, 3), num_classes=10)
    report, dense = _bitpacked(model)
    binary = binary_operations(model)
    assert len(binary) == 6 and dense == []
    assert report["operators"]["LceBconv2d"] == 5
    assert report["binary_convolutions"]["not_bitpacked"] == [binary[4].name]
    assert binary[4].kernel_size == (6, 6) and binary[4].input_shape[1:3] == (6, 6)
    with pytest.raises(ExportError, match=f"did not become LceBconv2d: {binary[4].name}"):
        check_report(report)


def test_quicknet_small_saved_by_the_registry_exports_through_the_cli(tmp_path, invoke):
    """The .h5 file keeps larq-zoo's blurpool initializer; ``cli.py export``
    reads it and proves every binary convolution bitpacked."""
    path = tmp_path / "quicknet_small.h5"
    model = zoo.get_model("quicknet_small", input_shape=(48, 48, 3), num_classes=10)
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
