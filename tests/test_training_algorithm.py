"""Bi-Real's training algorithm: clip initialisation, the two steps, the variants."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import zoo
from bnnzoo.training import runs
from bnnzoo.training.initialise import InitialisationError, initialise_from
from bnnzoo.training.train import load_model_file
from bnnzoo.zoo.binary_layers import binary_layers, binary_operations
from bnnzoo.zoo.variants import variant
from conftest import requires_fashion_mnist, run_cli

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
    assert initialise_from(binary, twin) == len([l for l in binary.layers if l.weights])
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
    layers = [l for l in step1.layers if getattr(l, "input_quantizer", None) is not None]
    assert len(layers) == 16 and binary_layers(step1) == []
    assert all(l.kernel_quantizer is None and l.input_quantizer.precision == 1 for l in layers)
    unscaled = variant(model, "unscaled_weights")
    assert len(binary_operations(unscaled)) == 16
    layer = binary_layers(unscaled)[0]
    quantized = layer.kernel_quantizer(tf.convert_to_tensor(layer.kernel))
    assert set(np.unique(quantized.numpy())) <= {-1.0, 1.0}  # sign(W): no alpha_c
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    initialise_from(unscaled, model)
    assert unscaled.predict(x, verbose=0).shape == (2, 10)


@requires_fashion_mnist
def test_train_init_from_a_real_twin_run(tmp_path):
    runs_dir = tmp_path / "runs"
    twin = run_cli(runs_dir, "train", "resnet18", *TINY, "--output", tmp_path / "twin")
    assert twin.returncode == 0, twin.stderr
    result = run_cli(runs_dir, "train", "bireal18", *TINY, "--learning-rate", "1e-12",
                     "--init-from", tmp_path / "twin", "--output", tmp_path / "binary")
    assert result.returncode == 0, result.stderr
    assert "Initialised" in result.stdout
    trained_twin = load_model_file(tmp_path / "twin" / "model.h5")
    binary = load_model_file(tmp_path / "binary" / "model.h5")
    twin_convs = [l for l in trained_twin.layers if isinstance(l, tf.keras.layers.Conv2D)]
    binary_convs = [l for l in binary.layers if isinstance(l, tf.keras.layers.Conv2D)]
    for a, b in zip(twin_convs, binary_convs):  # lr ~0: still the twin's kernels
        np.testing.assert_allclose(a.kernel.numpy(), b.kernel.numpy(), atol=1e-6)
    wrong = run_cli(runs_dir, "train", "bireal34", *TINY, "--init-from", tmp_path / "twin",
                    "--output", tmp_path / "wrong")
    assert wrong.returncode == 1 and "Cannot initialise bireal34" in wrong.stderr
    assert "Traceback" not in wrong.stderr and not (tmp_path / "wrong").exists()


@requires_fashion_mnist
def test_two_step_training_in_one_run_and_resume_across_steps(tmp_path):
    runs_dir, run_dir = tmp_path / "runs", tmp_path / "two"
    result = run_cli(runs_dir, "train", "bireal18", *TINY, "--two-step", "--recalibrate-bn",
                     "--output", run_dir)
    assert result.returncode == 0, result.stderr
    steps = ["step1-binary-activations", "step2-binary", "step3-batchnorm"]
    for step in steps:
        assert (run_dir / step / "model.h5").is_file(), step
    step1 = load_model_file(run_dir / steps[0] / "model.h5")
    assert binary_layers(step1) == []  # real weights, binary activations
    assert len([l for l in step1.layers if getattr(l, "input_quantizer", None)]) == 16
    assert len(binary_operations(load_model_file(run_dir / steps[1] / "model.h5"))) == 16
    final = load_model_file(run_dir / "model.h5")
    assert binary_layers(final)[0].kernel_quantizer.__class__.__name__ == "SteSign"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["two_step"] and config["recalibrate_bn"]
    assert (runs_dir / "latest").read_text().strip() == str(run_dir.resolve())
    # Interrupted after step 2: --resume (the latest run) does step 3 only.
    shutil.rmtree(run_dir / steps[2])
    (run_dir / "model.h5").unlink()
    step2_model = (run_dir / steps[1] / "model.h5").read_bytes()
    resumed = run_cli(runs_dir, "train", "bireal18", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / steps[2] / "model.h5").is_file() and (run_dir / "model.h5").is_file()
    assert (run_dir / steps[1] / "model.h5").read_bytes() == step2_model
    assert runs.read_config(run_dir)["two_step"]
