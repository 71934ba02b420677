"""The fused optimisers compute Keras's updates, one kernel per variable."""

import numpy as np
import pytest
import tensorflow as tf

from bnnzoo.training.fused_optimizers import FusedAdam, FusedAdamW, FusedSGD

K = tf.keras.optimizers
SCHEDULE = dict(initial_learning_rate=0.05, decay_steps=6, end_learning_rate=0.0)
PAIRS = {
    "adam": (K.Adam, FusedAdam, {}),
    "adamw": (K.AdamW, FusedAdamW, {"weight_decay": 0.1}),
    "sgd": (K.SGD, FusedSGD, {}),
    "momentum": (K.SGD, FusedSGD, {"momentum": 0.9}),
    "nesterov": (K.SGD, FusedSGD, {"momentum": 0.9, "nesterov": True}),
}


def run(make, kwargs, steps=6):
    """Two variables, one excluded from weight decay; a decaying learning rate."""
    rng = np.random.default_rng(0)
    variables = [tf.Variable(rng.normal(size=(3, 4)).astype("float32")) for _ in range(2)]
    optimizer = make(learning_rate=K.schedules.PolynomialDecay(**SCHEDULE), **kwargs)
    optimizer.exclude_from_weight_decay(var_list=variables[1:])

    @tf.function
    def step(gradients):
        optimizer.apply_gradients(zip(gradients, variables))

    for _ in range(steps):
        step([tf.constant(rng.normal(size=(3, 4)).astype("float32")) for _ in variables])
    ops = [op.type for op in step.get_concrete_function(
        [tf.TensorSpec((3, 4))] * 2).graph.get_operations()]
    return [v.numpy() for v in variables], ops, optimizer


@pytest.mark.parametrize("name", PAIRS)
def test_fused_updates_equal_keras_updates(name):
    keras, fused, kwargs = PAIRS[name]
    expected, keras_ops, _ = run(keras, kwargs)
    got, fused_ops, optimizer = run(fused, kwargs)
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    kernel = "ResourceApplyAdam" if "adam" in name else "ResourceApplyKerasMomentum"
    assert fused_ops.count(kernel) == 2 and keras_ops.count(kernel) == 0
    assert len(fused_ops) < len(keras_ops)
    assert isinstance(optimizer, keras)  # the same slots, so the same checkpoints


def test_checkpoints_are_interchangeable_with_keras_optimisers(tmp_path):
    """A run trained before the fused update resumes with its moments."""
    _, _, keras = run(K.Adam, {})
    path = tf.train.Checkpoint(optimizer=keras).save(str(tmp_path / "ckpt"))
    _, _, fused = run(FusedAdam, {}, steps=1)
    tf.train.Checkpoint(optimizer=fused).restore(path).assert_consumed()
    for a, b in zip(keras.variables(), fused.variables()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
