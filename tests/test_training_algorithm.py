"""Bi-Real's training algorithm: clip initialisation, the two steps, the variants."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import checksums, runs, zoo
from bnnzoo.runs import load_model_file
from bnnzoo.training.initialise import InitialisationError, initialise_from
from bnnzoo.training.config import TrainConfig
from bnnzoo.training.run import build_model
from bnnzoo.zoo.binary_layers import binary_layers, binary_operations
from bnnzoo.zoo.variants import variant
from conftest import assert_one_clear_error, requires_fashion_mnist, run_cli

SMALL = dict(input_shape=(16, 16, 1), num_classes=10)
TINY = ["--dataset", "fashion_mnist", "--input-size", "8", "--epochs", "1",
        "--steps-per-epoch", "3", "--batch-size", "16", "--validation-steps", "1", "--no-xla"]


def randomised(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_clip_initialisation_copies_the_twin_layer_for_layer():
    twin = randomised(zoo.get_model("resnet18", **SMALL))
    binary = zoo.get_model("bireal18", **SMALL)
    assert initialise_from(binary, twin) == len([layer for layer in binary.layers if layer.weights])
    for a, b in zip(binary.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_clip_initialisation_refuses_another_structure():
    binary = zoo.get_model("bireal18", **SMALL)
    before = [w.copy() for w in binary.get_weights()]
    with pytest.raises(InitialisationError, match="layer .* differs"):
        initialise_from(binary, zoo.get_model("resnet34", **SMALL))
    with pytest.raises(InitialisationError):  # other classes: a different head
        initialise_from(binary, zoo.get_model("resnet18", input_shape=(16, 16, 1), num_classes=5))
    for a, b in zip(binary.get_weights(), before):
        np.testing.assert_array_equal(a, b)  # nothing copied on a mismatch


def test_variants_switch_only_the_binary_layers_quantizers():
    model = zoo.get_model("bireal18", **SMALL)
    step1 = variant(model, "binary_activations")
    layers = [layer for layer in step1.layers if getattr(layer, "input_quantizer", None) is not None]
    assert len(layers) == 16 and binary_layers(step1) == []
    assert all(layer.kernel_quantizer is None and layer.input_quantizer.precision == 1 for layer in layers)
    unscaled = variant(model, "unscaled_weights")
    assert len(binary_operations(unscaled)) == 16
    layer = binary_layers(unscaled)[0]
    quantized = layer.kernel_quantizer(tf.convert_to_tensor(layer.kernel))
    assert set(np.unique(quantized.numpy())) <= {-1.0, 1.0}  # sign(W): no alpha_c
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    initialise_from(unscaled, model)
    assert unscaled.predict(x, verbose=0).shape == (2, 10)


def conv_kernels(model):
    return [layer.kernel.numpy() for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]


def test_batchnorm_only_trains_nothing_else():
    config = TrainConfig(model="bireal18", input_shape=(16, 16, 1), num_classes=10,
                         variant="unscaled_weights", batchnorm_only=True)
    model = build_model(config)
    trainable = {w.name.split("/")[-1].split(":")[0] for w in model.trainable_weights}
    assert trainable == {"gamma", "beta"}
    assert len(model.trainable_weights) == 2 * len(
        [layer for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)])


@requires_fashion_mnist
def test_twin_then_two_step_from_it_in_one_resumable_run(tmp_path, invoke):
    """resnet18 trains through the CLI; bireal18's two steps start from it (clip init), in a
    process of their own as a user runs them."""
    runs_dir, twin_dir = tmp_path / "runs", tmp_path / "twin"
    run_dir = runs_dir / "two"  # in the runs folder: runs/latest names it
    twin = invoke("train", "resnet18", *TINY, "--output", twin_dir, runs=runs_dir)
    assert twin.exit_code == 0, twin.output
    result = run_cli(runs_dir, "train", "bireal18", *TINY, "--learning-rate", "1e-12",
                     "--two-step", "--recalibrate-bn", "--init-from", twin_dir,
                     "--output", run_dir)
    assert result.returncode == 0, result.stderr
    assert "Initialised" in result.stdout and "Note:" not in result.stdout  # resnet18 is the twin
    steps = ["step1-binary-activations", "step2-binary", "step3-batchnorm"]
    for step in steps:
        assert (run_dir / step / "model.h5").is_file(), step
    step1 = load_model_file(run_dir / steps[0] / "model.h5")
    assert binary_layers(step1) == []  # real weights, binary activations
    assert len([layer for layer in step1.layers if getattr(layer, "input_quantizer", None)]) == 16
    step2 = load_model_file(run_dir / steps[1] / "model.h5")
    assert len(binary_operations(step2)) == 16
    # Learning rate ~0: step 1 still holds the twin's kernels (clip initialisation).
    twin_kernels = conv_kernels(load_model_file(twin_dir / "model.h5"))
    for twin_k, one in zip(twin_kernels, conv_kernels(step1)):
        np.testing.assert_allclose(one, twin_k, atol=1e-6)
    final = load_model_file(run_dir / "model.h5")
    assert binary_layers(final)[0].kernel_quantizer.__class__.__name__ == "SteSign"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["two_step"] and config["recalibrate_bn"]
    assert (runs_dir / "latest").read_text().strip() == str(run_dir.resolve())
    # Interrupted after step 1, whose model we replace by one with other kernels:
    # --resume (the latest run) keeps step 1 and trains steps 2 and 3 from it.
    for step in steps[1:]:
        shutil.rmtree(run_dir / step)
    (run_dir / "model.h5").unlink()
    for layer in step1.layers:
        if isinstance(layer, tf.keras.layers.Conv2D):
            layer.kernel.assign(-layer.kernel)
    step1.save(run_dir / steps[0] / "model.h5", include_optimizer=False, save_format="h5")
    # Replaced on purpose: its recorded SHA-256 goes, as the refusal of a damaged file says.
    checksums.sidecar(run_dir / steps[0] / "model.h5").unlink()
    step1_model = (run_dir / steps[0] / "model.h5").read_bytes()
    resumed = invoke("train", "bireal18", "--resume", runs=runs_dir)
    assert resumed.exit_code == 0, resumed.output
    assert (run_dir / steps[0] / "model.h5").read_bytes() == step1_model
    assert all((run_dir / step / "model.h5").is_file() for step in steps)
    step2 = load_model_file(run_dir / steps[1] / "model.h5")
    for twin_k, one, two in zip(twin_kernels, conv_kernels(step1), conv_kernels(step2)):
        np.testing.assert_allclose(two, one, atol=1e-6)  # step 2 starts from step 1 ...
        assert not np.allclose(two, twin_k)  # ... not from --init-from
    step3 = load_model_file(run_dir / steps[2] / "model.h5")
    assert binary_layers(step3)[0].kernel_quantizer.__class__.__name__ == "SteSign"
    for two, three in zip(conv_kernels(step2), conv_kernels(step3)):
        np.testing.assert_array_equal(three, two)  # BatchNorm only
    np.testing.assert_array_equal(conv_kernels(load_model_file(run_dir / "model.h5"))[1],
                                  conv_kernels(step3)[1])
    assert runs.read_config(run_dir)["two_step"]
    # Another structure: one clear message, nothing written.
    for two_step in ([], ["--two-step"]):
        wrong = invoke("train", "bireal34", *TINY, *two_step, "--init-from", twin_dir,
                       "--output", tmp_path / "wrong", runs=runs_dir)
        assert_one_clear_error(wrong, "Cannot initialise bireal34")
        assert not (tmp_path / "wrong").exists()
    assert (runs_dir / "latest").read_text().strip() == str(run_dir.resolve())
