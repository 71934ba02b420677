"""Real-to-Binary: the networks, their stage variants, the losses and the
progressive teacher-student pipeline on real data."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from larq_zoo.core import utils as lqz_utils
from larq_zoo.literature import RealToBinaryNet
from larq_zoo.literature.real_to_bin_nets import RealToBinNetBNNFactory
from larq_zoo.training.knowledge_distillation.knowledge_distillation import (
    AttentionMatchingLossLayer, OutputDistributionMatchingLossLayer)

from bnnzoo import export, runs, zoo
from bnnzoo.runs import load_model_file
from bnnzoo.export import flatbuffer
from bnnzoo.zoo import recipes
from bnnzoo.training import optimisation
from bnnzoo.training import stages, switch
from bnnzoo.training.distill import TeacherStudent
from bnnzoo.training.initialise import initialise_from
from bnnzoo.training.config import TrainConfig, resolve
from bnnzoo.training.run import build_model, compile_model
from bnnzoo.zoo.binary_layers import binary_operations
from bnnzoo.zoo.core import AttentionPoint, attention_points
from bnnzoo.zoo.real2bin import Real2BinFactory
from bnnzoo.zoo.variants import variant
from conftest import assert_one_clear_error, requires_fashion_mnist, run_cli

SMALL = dict(input_shape=(16, 16, 1), num_classes=10, filters=16)


def images(n=4, shape=(16, 16, 1), seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def test_real2bin_is_larq_zoos_real_to_binary_net_weight_for_weight():
    ref = RealToBinaryNet(input_shape=(96, 96, 3), weights=None, num_classes=10)
    class ZeroPadded(Real2BinFactory):
        pad_values = 0.0  # larq-zoo's padding

    ours = ZeroPadded(input_shape=(96, 96, 3), num_classes=10).build()
    assert [layer.name.replace("r2b_bnn", "real2bin") for layer in ref.layers[1:]] == \
        [layer.name for layer in ours.layers[1:]]
    ours.set_weights(ref.get_weights())  # same order, same shapes
    x = images(4, (96, 96, 3))
    np.testing.assert_allclose(ours(x, training=False), ref(x, training=False), atol=1e-6)
    # The default +1 padding computes something else on the same weights.
    padded = zoo.get_model("real2bin", input_shape=(96, 96, 3), num_classes=10)
    padded.set_weights(ref.get_weights())
    first = [tf.keras.Model(m.input, m.layers[[layer.name[-15:] for layer in m.layers].index(
        "block_2a_conv2d")].output) for m in (padded, ours)]
    assert np.abs(first[0](x) - first[1](x)).max() > 1  # at the borders


def test_imagenet_weights_are_larq_zoos_pinned_file(monkeypatch, tmp_path):
    """weights="imagenet" asks for larq-zoo's own file and SHA-256 and loads it."""
    asked = []
    reference = RealToBinaryNet(weights=None)
    reference.save_weights(tmp_path / "r2b.h5")

    def fake_download(**kwargs):
        asked.append(kwargs)
        return str(tmp_path / "r2b.h5")

    monkeypatch.setattr(lqz_utils, "download_pretrained_model", fake_download)
    model = zoo.get_model("real2bin", weights="imagenet")
    RealToBinNetBNNFactory(weights=None, num_classes=1000)._get_imagenet_weights_path()
    assert asked[0] == asked[1]  # larq-zoo's file name, version and hash
    assert model.count_params() == 11_995_624  # larq-zoo's table
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert {layer.pad_values for layer in binary_operations(model)} == {0.0}  # as trained


def test_layout_blocks_and_quantizers():
    model = zoo.get_model("real2bin", **SMALL)
    convs = binary_operations(model)
    assert len(convs) == 16
    assert {(layer.input_quantizer.__class__.__name__, layer.kernel_quantizer.__class__.__name__,
             layer.kernel_constraint.__class__.__name__, layer.pad_values) for layer in convs} == \
        {("SteSign", "SteSign", "weight_clip", 1.0)}
    points = attention_points(model)
    assert [tuple(p.shape[1:]) for p in points] == [
        (16, 16, 16), (16, 16, 16), (8, 8, 32), (8, 8, 32), (4, 4, 64), (4, 4, 64),
        (2, 2, 128), (2, 2, 128)]
    for conv in convs:  # BatchNorm -> sign -> bconv -> gate -> PReLU -> + shortcut
        (inbound,) = conv._inbound_nodes
        assert isinstance(inbound.inbound_layers, tf.keras.layers.BatchNormalization)
        (multiply,) = [n.outbound_layer for n in conv._outbound_nodes]
        assert isinstance(multiply, tf.keras.layers.Multiply)
        (prelu,) = [n.outbound_layer for n in multiply._outbound_nodes]
        (add,) = [n.outbound_layer for n in prelu._outbound_nodes]
        assert isinstance(prelu, tf.keras.layers.PReLU) and isinstance(add, tf.keras.layers.Add)
    shortcuts = [layer for layer in model.layers if layer.name.endswith("_shortcut_conv2d")]
    assert [layer.kernel.shape[-1] for layer in shortcuts] == [32, 64, 128]  # blocks 4, 6, 8


def test_gate_is_sigmoid_of_two_dense_layers_on_the_pooled_real_input():
    model = zoo.get_model("real2bin", **SMALL)
    rng = np.random.default_rng(1)
    model.set_weights([(rng.uniform(0.5, 2, w.shape) if "variance" in w.name
                        else rng.normal(size=w.shape) * 0.5).astype("float32")
                       for w in model.weights])
    layer = {layer.name: layer for layer in model.layers}
    name = "real2bin_block_4a"
    probe = tf.keras.Model(model.input, [layer[f"{name}_batch_norm"].output,
                                         layer[f"{name}_conv2d"].output,
                                         layer[f"{name}_scaling_multiplication"].output])
    x_r, conv, gated = [t.numpy() for t in probe(images(3), training=False)]
    w1 = layer[f"{name}_scaling_dense_reduce"].kernel.numpy()
    w2 = layer[f"{name}_scaling_dense_expand"].kernel.numpy()
    assert w1.shape == (16, 2) and w2.shape == (2, 32)  # C_in / 8, C_out
    scale = 1 / (1 + np.exp(-(np.maximum(x_r.mean(axis=(1, 2)) @ w1, 0) @ w2)))
    np.testing.assert_allclose(gated, conv * scale[:, None, None, :], rtol=1e-5, atol=1e-5)


def test_baseline_scale_is_a_learned_row_column_channel_constant_and_exports():
    model = zoo.get_model("real2bin_baseline", input_shape=(16, 16, 1), num_classes=10)
    rng = np.random.default_rng(2)
    for layer in model.layers:
        if layer.name.endswith("_rescale"):
            layer.set_weights([rng.uniform(0.5, 2, w.shape).astype("float32")
                               for w in layer.weights])
    rescale = model.get_layer("real2bin_baseline_block_2a_rescale")
    hs, ws, cs = rescale.get_weights()
    assert (hs.shape, ws.shape, cs.shape) == ((16, 1, 1), (1, 16, 1), (1, 1, 64))
    x = images(2, (16, 16, 64))
    np.testing.assert_allclose(rescale(x), x * hs * ws * cs, rtol=1e-6)
    prelu = rescale._inbound_nodes[0].inbound_layers
    assert isinstance(prelu, tf.keras.layers.PReLU)  # PReLU(s z) = s PReLU(z) for s >= 0
    rescale.scale_h.assign(-rescale.scale_h)
    rescale.scale_h.assign(rescale.scale_h.constraint(rescale.scale_h))
    assert float(tf.reduce_min(rescale.scale_h)) == 0.0  # kept non-negative
    assert not [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)][:-1]  # no gate
    # Exported: 16 LceBconv2d that LCE's interpreter runs, matching Keras.
    buf = export.export_flatbuffer(model, "arm64")
    assert flatbuffer.operator_histogram(buf)["LceBconv2d"] == 16
    # Stored as s_c and s_h s_w, not as their (H, W, C) product (1.22x the budget).
    assert abs(export.export_report(model, buf)["size"]["vs_one_bit_budget"] - 1) < 0.05
    x = images(8)
    np.testing.assert_allclose(export.predict_flatbuffer(buf, x), model.predict(x, verbose=0),
                               atol=1e-5)


def test_stage_variants_are_one_architecture_with_switched_quantizers():
    model = zoo.get_model("real2bin", **SMALL)
    expected = {"real": (None, None, 0.0), "soft_activations": ("Real2BinTanh", None, 0.0),
                "binary_activations": ("SteSign", None, 1.0), "binary": ("SteSign", "SteSign", 1.0)}
    x = images()
    for name, (inp, kernel, pad) in expected.items():
        stage = variant(model, name)
        convs = [layer for layer in stage.layers if layer.name.endswith("_conv2d") and "shortcut" not in layer.name
                 and "block_1_" not in layer.name]
        assert len(convs) == 16
        assert {(type(layer.input_quantizer).__name__ if layer.input_quantizer else None,
                 type(layer.kernel_quantizer).__name__ if layer.kernel_quantizer else None,
                 layer.pad_values) for layer in convs} == {(inp, kernel, pad)}, name
        assert initialise_from(stage, model) == len([layer for layer in model.layers if layer.weights])
        assert stage.predict(x, verbose=0).shape == (4, 10)
    t = tf.constant([-2.0, -0.3, 0.0, 0.5, 3.0])
    soft = variant(model, "soft_activations")
    q = [layer for layer in soft.layers if layer.name == "real2bin_block_2a_conv2d"][0].input_quantizer
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = q(t)
    np.testing.assert_allclose(y, np.tanh(t.numpy()), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(y, t), 1 - np.tanh(t.numpy()) ** 2, rtol=1e-4)


def attention(a):
    q = (a ** 2).mean(axis=-1).reshape(len(a), -1)
    return q / q.max(axis=1, keepdims=True)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_losses_against_hand_computed_values():
    rng = np.random.default_rng(3)
    shapes = [(2, 3, 3, 4), (2, 2, 2, 8)]
    s_vol = [rng.normal(size=s).astype("float32") for s in shapes]
    t_vol = [rng.normal(size=s).astype("float32") for s in shapes]
    out = tf.zeros((2, 5))
    layer = AttentionMatchingLossLayer(loss_weight=30.0)
    layer([out, [tf.constant(v) for v in t_vol], [tf.constant(v) for v in s_vol]])
    per_block = [((attention(s) - attention(t)) ** 2).mean(axis=1) for s, t in zip(s_vol, t_vol)]
    np.testing.assert_allclose(layer.losses[0], 30 * np.mean(per_block), rtol=1e-5)

    s_logits, t_logits = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    for temperature in (1.0, 4.0):
        layer = OutputDistributionMatchingLossLayer(loss_weight=3.0, softmax_temperature=temperature)
        layer([out, tf.constant(t_logits, tf.float32), tf.constant(s_logits, tf.float32)])
        p, q = softmax(t_logits / temperature), softmax(s_logits / temperature)
        kl = (p * np.log(p / q)).sum(axis=1)
        np.testing.assert_allclose(layer.losses[0], 3 * temperature ** 2 * kl.mean(), rtol=1e-5)


def tiny(name, seed):
    """Two 'blocks' (each ending in an attention point) and a classifier, named as the zoo's are."""
    inp = tf.keras.Input((4, 4, 2))
    x = tf.keras.layers.Conv2D(3, 3, padding="same", name=f"{name}_c1")(inp)
    a = AttentionPoint(name=f"{name}_block_2_out")(x)
    x = tf.keras.layers.Conv2D(3, 3, strides=2, padding="same", name=f"{name}_c2")(a)
    b = AttentionPoint(name=f"{name}_block_3_out")(x)
    x = tf.keras.layers.Dense(5, name=f"{name}_logits")(tf.keras.layers.Flatten()(b))
    model = tf.keras.Model(inp, tf.keras.layers.Softmax()(x), name=name)
    rng = np.random.default_rng(seed)
    model.set_weights([0.3 * rng.normal(size=w.shape).astype("float32") for w in model.weights])
    return model


def test_teacher_student_adds_both_losses_and_trains_only_the_student():
    teacher, student = tiny("t", 0), tiny("s", 1)
    combined = TeacherStudent(student, teacher, attention_weight=30.0, output_weight=3.0)
    x = images(3, (4, 4, 2))
    probs = combined(x)
    np.testing.assert_allclose(probs, student(x), rtol=1e-6)

    def parts(model):
        names = ["_block_2_out", "_block_3_out", "_logits"]
        layers = [layer for n in names for layer in model.layers if layer.name.endswith(n)]
        return tf.keras.Model(model.input, [layer.output for layer in layers])(x)

    (sa, sb, sl), (ta, tb, tl) = [[t.numpy() for t in parts(m)] for m in (student, teacher)]
    att = 30 * np.mean([((attention(s) - attention(t)) ** 2).mean(axis=1)
                        for s, t in ((sa, ta), (sb, tb))])
    p, q = softmax(tl), softmax(sl)
    out = 3 * (p * np.log(p / q)).sum(axis=1).mean()
    np.testing.assert_allclose(sorted(float(v) for v in combined.losses), sorted([att, out]),
                               rtol=1e-5)
    assert {id(w) for w in combined.trainable_weights} == {id(w) for w in student.weights}
    assert combined.student is student
    inp = tf.keras.Input((4, 4, 2))
    fused = tf.keras.Model(inp, tf.keras.layers.Dense(5, activation="softmax")(
        tf.keras.layers.Flatten()(inp)))
    with pytest.raises(ValueError, match="softmax layer"):  # its logits are not a tensor
        TeacherStudent(student, fused, attention_weight=0.0, output_weight=1.0)
    with pytest.raises(ValueError, match="same block outputs"):
        TeacherStudent(student, zoo.get_model("real2bin", **SMALL), attention_weight=1.0,
                       output_weight=1.0)


def test_stage_plans_and_recipes():
    config = TrainConfig(model="real2bin", learning_rate=1e-3, weight_decay=2e-5,
                         recipe=vars(recipes.get_recipe("real2bin")).copy())
    plan = stages.plan(config, "/runs/r")
    assert [(name, s.variant, s.teacher, s.init_from, s.learning_rate) for name, s in plan] == [
        ("stage0-real", "real", None, None, 1e-3),
        ("stage1-soft", "soft_activations", "/runs/r/stage0-real", "/runs/r/stage0-real", 1e-3),
        ("stage2-binary-activations", "binary_activations", "/runs/r/stage1-soft",
         "/runs/r/stage1-soft", 1e-3),
        ("stage3-binary", "magnitude_weights", "/runs/r/stage2-binary-activations",
         "/runs/r/stage2-binary-activations", pytest.approx(2e-4))]  # alpha_c sign(W)
    assert {(s.attention_weight, s.output_weight, s.temperature) for _, s in plan[1:]} == {
        (30.0, 3.0, 1.0)}
    assert [s.stage for _, s in plan] == [0, 1, 2, 3]  # a stage directory resumes as one run
    assert [s.weight_decay for _, s in plan] == [2e-5, 2e-5, 2e-5, 0.0]  # as larq-zoo
    baseline = TrainConfig(model="real2bin_baseline", learning_rate=1e-3,
                           recipe=vars(recipes.get_recipe("real2bin_baseline")).copy())
    assert [(n, s.variant, s.teacher, s.learning_rate) for n, s in
            stages.plan(baseline, "/r")] == [
        ("step1-binary-activations", "binary_activations", None, 1e-3),
        ("step2-binary", "binary", None, pytest.approx(2e-4))]
    # One stage alone: taught by --teacher, started from it unless --init-from says otherwise.
    one = stages.single_stage(TrainConfig(**{**vars(config), "stage": 2, "teacher": "/t"}))
    assert (one.variant, one.teacher, one.init_from, one.stage) == (
        "binary_activations", "/t", "/t", 2)
    with pytest.raises(ValueError, match="pass --teacher"):
        stages.single_stage(TrainConfig(**{**vars(config), "stage": 3}))
    with pytest.raises(ValueError, match="no teacher"):
        stages.single_stage(TrainConfig(**{**vars(config), "stage": 0, "teacher": "/t"}))
    with pytest.raises(ValueError, match="0 to 3"):
        stages.single_stage(TrainConfig(**{**vars(config), "stage": 4}))
    # The paper's step decay: x0.1 at epochs 40, 60 and 70 of 75.
    recipe = recipes.get_recipe("real2bin")
    schedule = optimisation.make_schedule(recipe, 1e-3, total_steps=750, steps_per_epoch=10)
    assert [float(schedule(s)) for s in (0, 399, 401, 601, 701, 749)] == pytest.approx(
        [1e-3, 1e-3, 1e-4, 1e-5, 1e-6, 1e-6])
    short = optimisation.make_schedule(recipe, 1e-3, total_steps=3, steps_per_epoch=3)
    assert [float(short(s)) for s in range(5)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5, 1e-6])
    # The short-run recipe: the same stages.
    short_plan = stages.plan(TrainConfig(**{**vars(config), "recipe": vars(
        recipes.get_recipe("real2bin_short")).copy()}), "/runs/r")
    assert [s.variant for _, s in short_plan] == [
        "real", "soft_activations", "binary_activations", "magnitude_weights"]
    assert short_plan[-1][1].learning_rate == pytest.approx(2e-4)


def test_magnitude_weights_switch_keeps_the_outputs_and_exports_bitpacked():
    """From real weights to alpha_c sign(W) in the gated net: each binary
    convolution's least-squares magnitude s_c is 1, so the switch changes no
    scale, where sign(W) multiplies the outputs by 1/s_c (>> 1)."""
    real = variant(zoo.get_model("real2bin", **SMALL), "binary_activations")
    scaled = variant(zoo.get_model("real2bin", **SMALL), "magnitude_weights")
    plain = zoo.get_model("real2bin", **SMALL)
    for target in (scaled, plain):
        initialise_from(target, real)
    s_scaled, s_plain = (np.concatenate([switch.magnitude(layer) for layer in
                                         switch.switched_convolutions(target, real)])
                         for target in (scaled, plain))
    np.testing.assert_allclose(s_scaled, 1.0, rtol=1e-5)
    assert np.median(1 / s_plain) > 5
    # alpha_c folds into LceBconv2d's multiplier: every binary convolution bitpacked.
    buf = export.export_flatbuffer(scaled, "arm64")
    assert flatbuffer.operator_histogram(buf)["LceBconv2d"] == 16


def test_real2bin_decay_reaches_conv_and_dense_kernels_only():
    """larq-zoo's l2(1e-5) kernel regulariser: lambda = 2e-5 on every conv and dense
    kernel (gates, shortcuts, stem) but the classifier's; none on BatchNorm, PReLU."""
    config = TrainConfig(model="real2bin", input_shape=(16, 16, 1), num_classes=10, width=16, xla="off",
                         variant="binary_activations", learning_rate=1e-3, weight_decay=2e-5,
                         epochs=1, steps_per_epoch=1,
                         recipe=vars(recipes.get_recipe("real2bin")).copy())
    model = build_model(config)
    decayed = optimisation.decayed_weights(model, "l2_kernels", [])
    names = {w.name.split("/")[-2] if "/" in w.name else w.name for w in decayed}
    assert len(decayed) == 16 + 32 + 3 + 1  # binary-activation convs, gate denses, shortcuts, stem
    assert all(w.name.split("/")[-1].startswith("kernel") for w in decayed)
    assert not any("logits" in name for name in names)
    compile_model(model, config)
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    grads = tape.gradient(penalty, decayed)
    for w, g in zip(decayed, grads):
        np.testing.assert_allclose(g, 2e-5 * w.numpy(), rtol=1e-5)


@requires_fashion_mnist
def test_resolve_refuses_options_that_do_not_fit():
    from bnnzoo import datasets

    data = datasets.load("fashion_mnist")
    for config, message in [
        (TrainConfig(model="bireal18", stage=1), "trains in one stage"),
        (TrainConfig(model="bireal18", width=0), "width must be at least 1"),
        (TrainConfig(model="real2bin", teacher="/t"), "pass --stage"),
        (TrainConfig(model="real2bin", two_step=True), "4 teacher-student stages"),
        (TrainConfig(model="real2bin_baseline", recalibrate_bn=True), "--two-step"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve(config, data)


def test_a_staged_run_killed_before_its_final_copy_finishes_on_resume(tmp_path, capsys):
    """Every stage has its model.h5 but the run's own copy is missing (killed in
    between): resuming trains nothing and writes the copy; then it is finished."""
    from bnnzoo.training.train import train_plan

    config = TrainConfig(model="real2bin", learning_rate=1e-3, epochs=2,
                         recipe=vars(recipes.get_recipe("real2bin")).copy())
    for i, (name, _) in enumerate(stages.plan(config, tmp_path)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.h5").write_bytes(b"stage %d" % i)
    train_plan(config, None, tmp_path, resume=True, point_latest=False)
    assert (tmp_path / "model.h5").read_bytes() == b"stage 3"
    train_plan(config, None, tmp_path, resume=True, point_latest=False)
    assert "has already finished every stage" in capsys.readouterr().out


def test_resume_checks_the_options_as_they_were_typed(tmp_path):
    """A stage run stores the stage's own rate (x0.2 in the last stage) and
    the options as typed: resumed with the same typed options it continues;
    another value is refused, whether it was typed or resolved at the start."""
    from bnnzoo.training.train import prepare_run

    typed = TrainConfig(model="real2bin", stage=3, learning_rate=1e-3, teacher="/t", epochs=2)
    run_dir, config = prepare_run(typed, tmp_path / "stage3", resume=False)
    assert config.options == {"epochs": 2, "learning_rate": 1e-3, "stage": 3, "teacher": "/t"}
    stored = dataclasses.replace(config, learning_rate=2e-4, init_from="/t", weight_decay=0.0)
    run_dir.mkdir()
    runs.write_config(run_dir, dataclasses.asdict(stored))
    _, resumed = prepare_run(typed, run_dir, resume=True)
    assert resumed.learning_rate == 2e-4  # the stored stage's, not the typed one
    prepare_run(TrainConfig(model="real2bin", weight_decay=0.0), run_dir, resume=True)  # resolved
    for other, clash in ((dataclasses.replace(typed, learning_rate=5e-4), "learning_rate"),
                         (dataclasses.replace(typed, epochs=3, batch_size=64),
                          "epochs, batch_size"),  # more epochs alone would extend it
                         (TrainConfig(model="real2bin", weight_decay=1e-4), "weight_decay")):
        with pytest.raises(runs.RunError, match=f"differ from its config.json: {clash}"):
            prepare_run(other, run_dir, resume=True)


TRAIN = ["--dataset", "fashion_mnist", "--epochs", "2", "--steps-per-epoch", "40",
         "--input-size", "14", "--batch-size", "32", "--validation-steps", "4",
         "--width", "16", "--learning-rate", "2e-3", "--no-xla"]


@requires_fashion_mnist
def test_cli_runs_the_progressive_pipeline_resumes_it_and_exports_bitpacked(tmp_path, invoke):
    runs_dir, run_dir = tmp_path / "runs", tmp_path / "run"
    result = run_cli(runs_dir, "train", "real2bin", *TRAIN, "--output", run_dir, timeout=1500)
    assert result.returncode == 0, result.stderr
    names = [stage.name for stage in recipes.get_recipe("real2bin").stages]
    histories = {}
    for i, name in enumerate(names):
        config = json.loads((run_dir / name / "config.json").read_text())
        assert config["teacher"] == (str(run_dir.resolve() / names[i - 1]) if i else None)
        assert config["init_from"] == config["teacher"]
        histories[name] = json.loads((run_dir / name / "history.json").read_text())
        assert len(histories[name]) == 2
        assert ("attention_loss" in histories[name][0]) == (i > 0)
    assert result.stdout.count("Initialised 90 layers") == 3  # stages 1-3, from the one before
    # Chance is 0.1 (measured: 0.52, 0.47, 0.36, then 0.47 for the binary stage).
    for name, least in (("stage0-real", 0.4), ("stage1-soft", 0.3),
                        ("stage2-binary-activations", 0.2), ("stage3-binary", 0.3)):
        assert histories[name][-1]["val_accuracy"] > least, name
    assert json.loads((run_dir / names[3] / "config.json").read_text())["learning_rate"] == \
        pytest.approx(2e-3 * 0.2)
    # The binary stage switches stage 2's 16 real kernels to binary ones; its
    # magnitude-aware sign keeps each channel's scale (training/switch.py), so
    # its outputs start where stage 2's ended (x1), not at chance.
    assert "Switched 16 convolutions to binary weights (outputs x1 the real kernels'" \
        in result.stdout
    final = load_model_file(run_dir / "model.h5")
    stage2 = {layer.name: layer for layer in load_model_file(run_dir / names[2] / "model.h5").layers}
    binary = binary_operations(final)  # 1-bit kernels and 1-bit activations
    assert len(binary) == 16
    for layer in binary:
        # Trained on from stage 2's kernels: nearly every sign kept (random: half).
        same = np.mean(np.sign(layer.kernel.numpy()) == np.sign(stage2[layer.name].kernel.numpy()))
        assert same > 0.9, (layer.name, same)

    # Killed during stage 3's second epoch: --resume restores its first epoch
    # (the student; the teacher is read again) and keeps stages 0-2.
    stage3 = run_dir / names[3]
    (run_dir / "model.h5").unlink()
    (stage3 / "model.h5").unlink()
    pointer = stage3 / "checkpoints" / "checkpoint"
    pointer.write_text(pointer.read_text().replace("ckpt-2", "ckpt-1"))
    kept = {name: (run_dir / name / "model.h5").read_bytes() for name in names[:3]}
    resumed = invoke("train", "real2bin", "--resume", "--output", run_dir, runs=runs_dir)
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming" in resumed.stdout and "epoch 2/2" in resumed.stdout
    assert "stage0-real" not in resumed.stdout and "Initialised" not in resumed.stdout
    assert all((run_dir / n / "model.h5").read_bytes() == kept[n] for n in names[:3])
    history = json.loads((stage3 / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1]
    assert history[0] == histories["stage3-binary"][0]

    result = invoke("export", run_dir, "--target", "arm64", runs=runs_dir)
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "export" / "real2bin-arm64.report.json").read_text())
    assert report["binary_convolutions"] == {"keras": 16, "lce_bconv2d": 16, "not_bitpacked": []}
    assert report["parity"]["top1_agreement"] >= 0.97  # on 256 real test images
    ops = report["operators"]
    assert ops["LOGISTIC"] == 16 and ops["FULLY_CONNECTED"] == 33  # gates stay float
    # Their MACs in the flatbuffer: sum over the 16 gates of C_in C_in/8 + C_in/8 C_out.
    dense = [op.macs for op in flatbuffer.operators(
        (run_dir / "export" / "real2bin-arm64.tflite").read_bytes()) if op.name == "FULLY_CONNECTED"]
    gates = [(c.input_shape[-1], c.filters) for c in binary_operations(final)]
    assert sum(dense[:-1]) == sum(i * (i // 8) + (i // 8) * o for i, o in gates) == 18_400

    # One stage alone, taught by a given run; a missing teacher is one message.
    wrong = invoke("train", "real2bin", *TRAIN, "--stage", "2", "--output", tmp_path / "alone")
    assert_one_clear_error(wrong, "pass --teacher")
    assert not (tmp_path / "alone").exists()
