"""The Bi-Real recipe: Adam, linear decay to 0, label smoothing, no decay on binary kernels."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import zoo
from bnnzoo.training import optimisation
from bnnzoo.training import TrainConfig
from bnnzoo.zoo import recipes
from bnnzoo.training.config import resolve
from bnnzoo.training.run import build_model, compile_model
from bnnzoo.zoo.binary_layers import binary_kernels
from conftest import fake_data


def test_bireal18_defaults_to_the_papers_recipe():
    config = resolve(TrainConfig(model="bireal18", batch_size=128), fake_data())
    assert config.recipe["optimizer"] == "adam" and config.recipe["schedule"] == "linear"
    assert config.learning_rate == pytest.approx(1e-3 * 128 / 256)
    assert config.label_smoothing == 0.1 and config.epochs == 256
    assert config.steps_per_epoch == 1000 // 128
    assert config.input_shape == (28, 28, 1) and config.num_classes == 10
    assert config.xla == "auto"  # decided by training.xla's probe when the run starts
    assert config.precision in ("float32", "bfloat16")  # training.hardware's detection


def test_a_named_recipe_replaces_the_models_and_keeps_its_stages():
    paper = resolve(TrainConfig(model="siman_resnet18", batch_size=128), fake_data())
    short = resolve(TrainConfig(model="siman_resnet18", recipe="siman_short", batch_size=128),
                    fake_data())
    assert paper.recipe["name"] == "siman_imagenet" and short.recipe["name"] == "siman_short"
    # The paper's 0.1 at batch 512 scales to 0.025 at 128; the short recipe keeps 0.1.
    assert paper.learning_rate == pytest.approx(0.025) and short.learning_rate == pytest.approx(0.1)
    assert short.recipe["optimizer"] == "sgd" and short.epochs == 2
    # Resolved again (a stage, a resumed run), the stored fields are the recipe.
    assert resolve(short, fake_data()).recipe == short.recipe
    with pytest.raises(ValueError, match="not its stages"):
        resolve(TrainConfig(model="siman_resnet18", recipe="real2bin_baseline"), fake_data())
    with pytest.raises(KeyError, match="Unknown recipe"):
        resolve(TrainConfig(model="siman_resnet18", recipe="nope"), fake_data())


@pytest.mark.parametrize("xla", ["on", "off"])
def test_compiled_model_uses_adam_label_smoothing_and_the_configs_xla(xla):
    config = resolve(TrainConfig(model="bireal18", batch_size=8, epochs=2, input_size=8, xla=xla),
                     fake_data())
    model = build_model(config)
    compile_model(model, config)
    assert isinstance(model.optimizer, tf.keras.optimizers.Adam)
    assert model.loss.get_config()["label_smoothing"] == 0.1
    assert model._jit_compile is (xla == "on")


def test_linear_schedule_decays_to_zero():
    schedule = optimisation.make_schedule(recipes.get_recipe("bireal"), 1e-3, total_steps=100,
                                     steps_per_epoch=10)
    values = [float(schedule(s)) for s in (0, 25, 50, 100, 150)]
    np.testing.assert_allclose(values, [1e-3, 7.5e-4, 5e-4, 0, 0], atol=1e-9)


def test_cosine_schedule_with_warmup():
    recipe = dataclasses.replace(recipes.get_recipe("bireal"), schedule="cosine", warmup_epochs=1)
    schedule = optimisation.make_schedule(recipe, 0.1, total_steps=110, steps_per_epoch=10)
    np.testing.assert_allclose(
        [float(schedule(s)) for s in (0, 5, 10, 60, 110)], [0, 0.05, 0.1, 0.05, 0], atol=1e-7)


def test_weight_decay_never_touches_binary_kernels():
    model = zoo.bireal18(input_shape=(8, 8, 1), num_classes=10)
    binary = binary_kernels(model)
    assert len(binary) == 16
    recipe = recipes.get_recipe("bireal")
    optimizer = optimisation.make_optimizer(recipe, learning_rate=0.1, total_steps=10**6,
                                       steps_per_epoch=1, weight_decay=0.5, no_decay=binary)
    variables = model.trainable_variables
    before = [v.numpy().copy() for v in variables]
    # Zero gradients: only the decoupled weight decay moves anything.
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    binary_ids = {id(v) for v in binary}
    moved_real = 0
    for v, b in zip(variables, before):
        if id(v) in binary_ids:
            np.testing.assert_array_equal(v.numpy(), b)
        elif "kernel" in v.name and np.abs(b).sum() > 0:
            np.testing.assert_allclose(v.numpy(), b * (1 - 0.1 * 0.5), rtol=1e-5)
            moved_real += 1
    assert moved_real >= 4  # stem, shortcut 1x1s and classifier were decayed


def test_a_recipe_declares_its_stages_and_the_plan_reads_them():
    """training.stages knows no model: a recipe's own stage declaration is its plan."""
    from bnnzoo.training import stages

    declared = (recipes.Stage("a-real", "real"), recipes.Stage("b-taught", "binary_activations",
                                                                taught=True),
                recipes.Stage("c-untaught", "binary"))
    recipe = dataclasses.replace(recipes.get_recipe("bireal"), stages=declared,
                                 attention_weight=2.0, final_stage_lr_factor=0.5)
    config = TrainConfig(model="bireal18", learning_rate=1e-3, weight_decay=0.0,
                         recipe=dataclasses.asdict(recipe))
    plan = stages.plan(config, "/r")
    assert [(name, s.variant, s.init_from, s.teacher, s.attention_weight, s.learning_rate)
            for name, s in plan] == [
        ("a-real", "real", None, None, 0.0, 1e-3),
        ("b-taught", "binary_activations", "/r/a-real", "/r/a-real", 2.0, 1e-3),
        ("c-untaught", "binary", "/r/b-taught", None, 0.0, pytest.approx(5e-4))]
    with pytest.raises(ValueError, match="3 teacher-student stages"):
        stages.plan(dataclasses.replace(config, two_step=True), "/r")
    # config.json stores each stage's fields; runs from before the declaration, a kind.
    stored = json.loads(json.dumps(dataclasses.asdict(recipe)))
    assert recipes.Recipe(**stored).stages == declared
    old = dict(stored, name="real2bin", stages="progressive")
    assert recipes.Recipe(**old).stages == recipes.get_recipe("real2bin").stages
    assert recipes.Recipe(**dict(stored, stages="")).stages == ()
