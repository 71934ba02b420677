"""ReActNet: its parts' maths, ReActNet-A's and ReAct-ResNet-18's layouts, the
recipe's stages and loss, and a trained network exported bitpacked."""

import dataclasses
import json

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import zoo
from bnnzoo.export.footprint import footprint
from bnnzoo.quantizers import (BiRealMagnitudeAwareSign, ReActNetWeightSign, RPReLU, RSign,
                               reactnet_weight_sign)
from bnnzoo.runs import load_model_file
from bnnzoo.training import stages
from bnnzoo.training.config import TrainConfig
from bnnzoo.training.distill import TeacherStudent
from bnnzoo.training.run import compile_model
from bnnzoo.zoo import recipes
from bnnzoo.zoo.binary_layers import binary_operations
from conftest import QUICK, assert_one_clear_error, requires_fashion_mnist, run_cli

RNG = np.random.default_rng(0)


def gradients(function, *variables, upstream):
    with tf.GradientTape() as tape:
        tape.watch([v for v in variables if not isinstance(v, tf.Variable)])
        y = function()
        loss = tf.reduce_sum(y * upstream)
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, list(variables))]


def test_rsign_is_the_sign_of_a_learned_shift_with_bireal_gradient():
    x = tf.constant(RNG.uniform(-2, 2, (2, 3, 3, 4)), tf.float32)
    q = lq.quantizers.get("reactnet_sign")
    assert isinstance(q, RSign) and q.precision == 1
    q.build(x.shape)
    np.testing.assert_array_equal(q.shift.numpy(), np.zeros(4))  # initialised 0
    b = np.array([0.5, -0.25, 0.0, 1.5], np.float32)
    q.shift.assign(b)
    g = RNG.normal(size=x.shape).astype(np.float32)
    y, (dx, db) = gradients(lambda: q(x), x, q.shift, upstream=g)
    z = x.numpy() + b
    np.testing.assert_array_equal(y, np.where(z >= 0, 1.0, -1.0))
    dz = g * np.maximum(0.0, 2 - 2 * np.abs(z))  # Bi-Real's approximate sign
    np.testing.assert_allclose(dx, dz, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(db, dz.sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)


def test_weight_sign_is_alpha_sign_w_straight_through_the_clip():
    w = tf.constant(RNG.normal(0, 0.8, (3, 3, 4, 5)), tf.float32)  # some |w| > 1
    alpha = np.abs(w.numpy()).mean(axis=(0, 1, 2))
    g = RNG.normal(size=w.shape).astype(np.float32)
    y, (dw,) = gradients(lambda: reactnet_weight_sign(w), w, upstream=g)
    np.testing.assert_allclose(y, alpha * np.where(w.numpy() >= 0, 1.0, -1.0), rtol=1e-6)
    inside = np.abs(w.numpy()) <= 1
    assert 0 < inside.mean() < 1
    np.testing.assert_array_equal(dw, g * inside)  # no alpha factor
    _, (bireal,) = gradients(lambda: BiRealMagnitudeAwareSign()(w), w, upstream=g)
    np.testing.assert_allclose(bireal, g * inside * alpha, rtol=1e-6)  # Bi-Real's has it
    quantizer = lq.quantizers.get("reactnet_weight_sign")
    assert isinstance(quantizer, ReActNetWeightSign) and quantizer.precision == 1
    np.testing.assert_array_equal(quantizer(w), y)


def test_rprelu_is_shift_prelu_shift():
    x = tf.constant(RNG.normal(size=(2, 3, 3, 4)), tf.float32)
    layer = RPReLU()
    layer.build(x.shape)
    np.testing.assert_array_equal(layer.prelu.alpha.numpy().ravel(), [0.25] * 4)
    np.testing.assert_array_equal(layer.shift_in.numpy(), np.zeros(4))
    np.testing.assert_array_equal(layer.shift_out.numpy(), np.zeros(4))
    b0, beta, b1 = (np.array(v, np.float32) for v in
                    ([0.3, -0.2, 0.0, 1.0], [0.25, 0.1, -0.5, 2.0], [-1.0, 0.5, 0.2, 0.0]))
    layer.shift_in.assign(b0)
    layer.prelu.alpha.assign(beta.reshape(1, 1, 4))
    layer.shift_out.assign(b1)
    g = RNG.normal(size=x.shape).astype(np.float32)
    y, (dx, d_in, d_beta, d_out) = gradients(
        lambda: layer(x), x, layer.shift_in, layer.prelu.alpha, layer.shift_out, upstream=g)
    z = x.numpy() + b0  # x - gamma
    slope = np.where(z > 0, 1.0, beta)
    np.testing.assert_allclose(y, np.where(z > 0, z, beta * z) + b1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, g * slope, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d_in, (g * slope).sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_beta.ravel(), (g * np.minimum(z, 0)).sum(axis=(0, 1, 2)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_out, g.sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)


def test_the_parts_save_and_load_in_any_larq_layer(tmp_path):
    inputs = tf.keras.Input((6, 6, 3))
    x = lq.layers.QuantConv2D(4, 3, padding="same", input_quantizer="reactnet_sign",
                              kernel_quantizer="reactnet_weight_sign",
                              kernel_constraint="weight_clip", use_bias=False)(inputs)
    x = lq.layers.QuantDense(5, input_quantizer="reactnet_sign",
                             kernel_quantizer="reactnet_weight_sign")(tf.keras.layers.Flatten()(
                                 RPReLU()(x)))
    model = tf.keras.Model(inputs, x)
    model.set_weights([RNG.normal(size=w.shape).astype(np.float32) * 0.5 for w in model.weights])
    assert sum("shift" in w.name for w in model.weights) == 4  # RSign's two, RPReLU's two
    images = RNG.normal(size=(3, 6, 6, 3)).astype(np.float32)
    for trainable in (True, False):  # frozen (a teacher), the shifts are weights still
        model.trainable = trainable
        assert len(model.weights) == 8
        model.save(tmp_path / "m.h5")
        np.testing.assert_array_equal(
            load_model_file(tmp_path / "m.h5").predict(images, verbose=0),
            model.predict(images, verbose=0))


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_reactnet_a_layout_at_224():
    """The authors' ReActNet-A: 13 blocks, 31 binary convolutions, identity
    shortcuts only (a real stem, no other real convolution), 29.4M parameters."""
    model = zoo.get_model("reactnet_a")
    binary = binary_operations(model)
    assert model.count_params() == 29_366_472
    assert sum(int(np.prod(layer.kernel.shape)) for layer in binary) == 28_253_184
    assert len(binary) == 31
    assert all(isinstance(layer.input_quantizer, RSign)
               and isinstance(layer.kernel_quantizer, ReActNetWeightSign) for layer in binary)
    real = [layer for layer in layers_of(model, tf.keras.layers.Conv2D) if layer not in binary]
    assert [(layer.filters, layer.kernel_size, layer.strides) for layer in real] == [
        (32, (3, 3), (2, 2))]  # the stem
    pools = [layer.pool_size for layer in layers_of(model, tf.keras.layers.AvgPool2D)]
    assert pools == [(2, 2)] * 4 + [(7, 7)]  # the strided 3x3s' shortcuts, the head's pooling
    rprelus = layers_of(model, RPReLU)
    assert len(rprelus) == 26
    assert [layer.output.shape[-1] for layer in rprelus[1::2]] == [
        64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    assert [layer.output.shape[1] for layer in rprelus[1::2]] == [
        112, 56, 56, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7]
    assert len(layers_of(model, tf.keras.layers.Concatenate)) == 5  # the width doubles 5 times
    counted = footprint(model)
    assert counted.binary_macs == pytest.approx(4.82e9, rel=0.005)  # the paper's BOPs
    assert counted.flops == pytest.approx(zoo.model_entry("reactnet_a").paper_flops, rel=0.06)


def test_reactnet_resnet18_is_bireal18_with_rsign_and_rprelu():
    model, bireal = zoo.get_model("reactnet_resnet18"), zoo.get_model("bireal18")
    binary = binary_operations(model)
    assert len(binary) == 16
    assert all(isinstance(layer.input_quantizer, RSign) for layer in binary)
    adds = layers_of(model, tf.keras.layers.Add)
    assert len(adds) == len(layers_of(model, RPReLU)) == 16
    assert all(isinstance(add.outbound_nodes[0].outbound_layer, RPReLU) for add in adds)
    shifts = sum(layer.input_shape[-1] for layer in binary)
    rprelu = 3 * sum(add.output.shape[-1] for add in adds)
    assert model.count_params() == bireal.count_params() + shifts + rprelu == 11_714_024
    kinds = (tf.keras.layers.Conv2D, tf.keras.layers.BatchNormalization, tf.keras.layers.Dense)
    assert [(type(layer).__name__, [w.shape for w in layer.weights if "shift" not in w.name])
            for layer in model.layers if isinstance(layer, kinds)] == [
        (type(layer).__name__, [w.shape for w in layer.weights])
        for layer in bireal.layers if isinstance(layer, kinds)]


@pytest.mark.parametrize("name", ["reactnet_a", "reactnet_resnet18"])
def test_larq_zoo_conventions_and_the_small_image_rule(name):
    small = zoo.get_model(name, input_shape=(28, 28, 1), num_classes=7)
    assert small.output_shape == (None, 7)
    stem = layers_of(small, tf.keras.layers.Conv2D)[0]
    assert stem.strides == (1, 1) and not layers_of(small, tf.keras.layers.MaxPool2D)
    features = zoo.get_model(name, input_shape=(None, None, 3), include_top=False)
    assert features.output_shape == (None, None, None, 1024 if name == "reactnet_a" else 512)
    tensor = tf.keras.Input((40, 40, 3))
    assert zoo.get_model(name, input_tensor=tensor, num_classes=3).input is tensor


def test_the_recipe_trains_a_teacher_then_two_steps_both_taught_by_it():
    config = TrainConfig(model="reactnet_a", learning_rate=5e-4, weight_decay=1e-5,
                         recipe=vars(recipes.get_recipe("reactnet")).copy())
    recipe = recipes.get_recipe("reactnet")
    assert (recipe.optimizer, recipe.schedule, recipe.learning_rate,
            recipe.reference_batch_size) == ("adam", "linear", 5e-4, 256)
    teacher = "/runs/r/teacher-real"
    assert [(name, s.variant, s.teacher, s.init_from, s.weight_decay, s.label_weight,
             s.output_weight, s.attention_weight, s.stage)
            for name, s in stages.plan(config, "/runs/r")] == [
        ("teacher-real", "real", None, None, 1e-5, 1.0, 0.0, 0.0, 0),
        ("step1-binary-activations", "binary_activations", teacher, None, 1e-5, 0.0, 1.0, 0.0, 1),
        ("step2-binary", "binary", teacher, "/runs/r/step1-binary-activations", 0.0, 0.0, 1.0,
         0.0, 2)]
    # A given teacher replaces the teacher stage; the stages keep their numbers.
    given = dataclasses.replace(config, teacher="/t/model.h5")
    assert [(name, s.teacher, s.init_from, s.stage) for name, s in stages.plan(given, "/runs/r")] == [
        ("step1-binary-activations", "/t/model.h5", None, 1),
        ("step2-binary", "/t/model.h5", "/runs/r/step1-binary-activations", 2)]
    assert stages.teacher_stage(config) == "teacher-real"
    # One step alone: step 1 starts from new weights, step 2 from --init-from.
    one = stages.single_stage(dataclasses.replace(config, stage=1, teacher="/t"))
    assert (one.variant, one.teacher, one.init_from, one.label_weight) == (
        "binary_activations", "/t", None, 0.0)
    with pytest.raises(ValueError, match="taught by teacher-real: pass --teacher"):
        stages.single_stage(dataclasses.replace(config, stage=2))
    with pytest.raises(ValueError, match="starts from stage 1: pass --init-from"):
        stages.single_stage(dataclasses.replace(config, stage=2, teacher="/t"))
    two = stages.single_stage(dataclasses.replace(config, stage=2, teacher="/t", init_from="/s"))
    assert (two.teacher, two.init_from, two.weight_decay) == ("/t", "/s", 0.0)
    # Real-to-Binary keeps being taught by the stage before, with the labels.
    real2bin = TrainConfig(model="real2bin", learning_rate=1e-3,
                           recipe=vars(recipes.get_recipe("real2bin")).copy())
    assert {s.label_weight for _, s in stages.plan(real2bin, "/r")} == {1.0}
    assert stages.teacher_stage(real2bin) == ""


def tiny(name, seed):
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((4, 4, 2))
    x = tf.keras.layers.Dense(5, name=f"{name}_logits")(tf.keras.layers.Flatten()(inputs))
    return tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(x), name=name)


@pytest.mark.parametrize("label_weight", [0.0, 1.0])
def test_the_distributional_loss_is_the_cross_entropy_against_the_teachers_softmax(label_weight):
    """With ReActNet's loss weights a taught step's loss is the KL divergence
    from the teacher's softmax: the cross-entropy against it minus the
    teacher's entropy, so the same gradients; the labels' weight is 0."""
    teacher, student = tiny("t", 0), tiny("s", 1)
    model = TeacherStudent(student, teacher, attention_weight=0.0, output_weight=1.0)
    config = TrainConfig(model="reactnet_a", recipe=vars(recipes.get_recipe("reactnet")).copy(),
                         learning_rate=1e-3, epochs=1, steps_per_epoch=1, weight_decay=0.0,
                         label_smoothing=0.0, label_weight=label_weight, precision="float32",
                         xla="off")
    compile_model(model, config)
    x = RNG.normal(size=(6, 4, 4, 2)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[RNG.integers(0, 5, 6)]
    p, q = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    cross_entropy = -(p * np.log(q)).sum(axis=1).mean()
    entropy = -(p * np.log(p)).sum(axis=1).mean()
    labels = -(y * np.log(q)).sum(axis=1).mean()
    loss = model.evaluate(x, y, verbose=0, batch_size=6)[0]
    assert loss == pytest.approx(cross_entropy - entropy + label_weight * labels, rel=1e-4)
    with tf.GradientTape(persistent=True) as tape:
        model(x, training=True)
        kl = tf.add_n(model.losses)
        ce = -tf.reduce_mean(tf.reduce_sum(p * tf.math.log(student(x)), axis=1))
    for a, b in zip(*(tape.gradient(t, student.trainable_weights) for t in (kl, ce))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


TRAIN = [*QUICK, "--width", "8", "--epochs", "1", "--steps-per-epoch", "15", "--learning-rate",
         "2e-3", "--xla", "off"]


def test_reactnet_a_exports_every_binary_convolution_bitpacked_with_its_parts_as_float_ops():
    """31 LceBconv2d for 31 binary convolutions; RSign's shift an ADD before
    each LceQuantize, RPReLU an ADD, PRELU, ADD (shifts away from their
    initial 0, as training leaves them: a zero shift is folded away)."""
    import sys
    from pathlib import Path

    from bnnzoo import export
    from bnnzoo.export import flatbuffer

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from deployment_table import as_trained

    model = as_trained(zoo.get_model("reactnet_a", input_shape=(16, 16, 1), num_classes=10,
                                     filters=4))
    buf = export.export_flatbuffer(model, "arm64")
    report = export.export_report(model, buf)
    assert report["binary_convolutions"] == {"keras": 31, "lce_bconv2d": 31, "not_bitpacked": []}
    ops = flatbuffer.operator_histogram(buf)
    assert (ops["LceQuantize"], ops["PRELU"], ops["CONV_2D"], ops["CONCATENATION"]) == (
        31, 26, 1, 5)
    assert ops["ADD"] == 31 + 2 * 26 + 31  # shifts, RPReLU's two, residual sums
    producers = {}
    for op in flatbuffer.operators(buf):
        for tensor in op.output_names:
            producers[tensor] = op.name
    assert [producers.get(op.input_names[0]) for op in flatbuffer.operators(buf)
            if op.name == "LceQuantize"] == ["ADD"] * 31


@requires_fashion_mnist
def test_cli_trains_the_three_stages_then_exports_fully_bitpacked(tmp_path, invoke):
    """``train reactnet_resnet18``: teacher, step 1 from new weights, step 2
    from step 1, both steps taught by the teacher without labels; exported,
    its 16 binary convolutions are 16 LceBconv2d and the file is faithful.
    ``--teacher`` without ``--stage`` is refused for a recipe without a
    teacher stage."""
    runs_dir, run_dir = tmp_path / "runs", tmp_path / "run"
    result = run_cli(runs_dir, "train", "reactnet_resnet18", *TRAIN, "--output", run_dir)
    assert result.returncode == 0, result.stderr
    configs = {name: json.loads((run_dir / name / "config.json").read_text())
               for name in ("teacher-real", "step1-binary-activations", "step2-binary")}
    teacher = str(run_dir.resolve() / "teacher-real")
    assert [(c["teacher"], c["label_weight"], c["output_weight"]) for c in configs.values()] == [
        (None, 1.0, 0.0), (teacher, 0.0, 1.0), (teacher, 0.0, 1.0)]
    assert configs["step1-binary-activations"]["init_from"] is None
    assert result.stdout.count("Initialised") == 1  # step 2, from step 1
    history = json.loads((run_dir / "teacher-real" / "history.json").read_text())
    assert history[-1]["val_accuracy"] > 0.3  # chance is 0.1

    result = invoke("export", run_dir, "--target", "arm64", runs=runs_dir)
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "export" / "reactnet_resnet18-arm64.report.json").read_text())
    assert report["binary_convolutions"] == {"keras": 16, "lce_bconv2d": 16, "not_bitpacked": []}
    assert (report["operators"]["LceQuantize"], report["operators"]["PRELU"]) == (16, 16)
    assert report["parity"]["noise_floor"]["faithful"]

    # A given teacher replaces the teacher stage (the plan: test above); a
    # recipe without one refuses --teacher without --stage, in one line.
    wrong = invoke("train", "bireal18", *TRAIN, "--teacher", run_dir / "teacher-real",
                   "--output", tmp_path / "wrong", runs=runs_dir)
    assert_one_clear_error(wrong, "--teacher teaches one stage")
