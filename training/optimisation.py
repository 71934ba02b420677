"""What a recipe (``zoo.recipes``) becomes in Keras: its learning-rate
schedule, its optimiser, weight decay on the real-valued weights (never a
binary kernel: its latent weight only matters through its sign), the loss and
the metrics.
"""

from typing import Optional

import tensorflow as tf

from bnnzoo.zoo.recipes import Recipe

from .fused_optimizers import FusedAdam, FusedAdamW, FusedSGD


def make_schedule(recipe: Recipe, learning_rate: float, total_steps: int, steps_per_epoch: int):
    r"""The recipe's learning-rate schedule from Keras's own schedules.

    Linear (``PolynomialDecay``, power 1): \( \eta_t = \eta_0 (1 - t/T) \).
    Cosine (``CosineDecay``), after ``warmup_epochs`` of linear warm-up from 0:
    \( \eta_t = \tfrac{\eta_0}{2}(1 + \cos(\pi t'/T')) \), with \(t'\),
    \(T'\) counted after the warm-up. Both reach 0 at the last step. The
    warm-up takes at most a tenth of the run, so short runs still reach
    \( \eta_0 \) (SiMaN: 5 of 400 epochs). Step (``PiecewiseConstantDecay``):
    \( \eta_0 \gamma^k \) after the \(k\)-th of the ``decay_at`` fractions of
    the run (Real-to-Binary: \( \gamma = 0.1 \) at 40/75, 60/75, 70/75).
    """
    schedules = tf.keras.optimizers.schedules
    warmup_steps = min(recipe.warmup_epochs * steps_per_epoch, total_steps // 10)
    if recipe.schedule == "linear":
        if warmup_steps:
            raise ValueError("The linear schedule has no warm-up; use 'cosine'.")
        return schedules.PolynomialDecay(learning_rate, max(total_steps, 1), 0.0, power=1.0)
    if recipe.schedule == "cosine":
        if not warmup_steps:
            return schedules.CosineDecay(learning_rate, max(total_steps, 1))
        return schedules.CosineDecay(0.0, max(total_steps - warmup_steps, 1),
                                     warmup_target=learning_rate, warmup_steps=warmup_steps)
    if recipe.schedule == "step":
        # Step round(f T) is the first at the lower rate (Keras decays after a
        # boundary); strictly increasing, so no drop is skipped on short runs.
        boundaries = []
        for f in recipe.decay_at:
            boundaries.append(max(round(f * total_steps) - 1, boundaries[-1] + 1 if boundaries else 0))
        multipliers = recipe.decay_multipliers or [recipe.decay_factor**k
                                                   for k in range(len(boundaries) + 1)]
        if len(multipliers) != len(boundaries) + 1:
            raise ValueError("decay_multipliers needs one factor more than decay_at has boundaries.")
        values = [learning_rate * m for m in multipliers]
        return schedules.PiecewiseConstantDecay(boundaries, values)
    raise ValueError(f"Unknown schedule {recipe.schedule!r}: use 'linear', 'cosine' or 'step'.")


def make_optimizer(
    recipe: Recipe,
    *,
    learning_rate: float,
    total_steps: int,
    steps_per_epoch: int,
    weight_decay: float,
    no_decay: Optional[list[tf.Variable]] = None,
) -> tf.keras.optimizers.Optimizer:
    """The recipe's optimiser (Keras's, each update one fused kernel:
    ``training.fused_optimizers``); decoupled weight decay skips ``no_decay``."""
    schedule = make_schedule(recipe, learning_rate, total_steps, steps_per_epoch)
    decay = weight_decay if weight_decay > 0 else None
    if recipe.binary_optimizer:
        return binary_case_optimizer(recipe, learning_rate, total_steps, steps_per_epoch)
    if recipe.optimizer == "adam":
        optimizer = (FusedAdamW if decay else FusedAdam)(
            learning_rate=schedule, epsilon=recipe.adam_epsilon,
            **({"weight_decay": decay} if decay else {})
        )
    elif recipe.optimizer == "sgd":
        optimizer = FusedSGD(
            learning_rate=schedule, momentum=recipe.momentum, weight_decay=decay
        )
    else:
        raise ValueError(f"Unknown optimizer {recipe.optimizer!r}.")
    if decay and no_decay:
        optimizer.exclude_from_weight_decay(var_list=no_decay)
    return optimizer


def binary_case_optimizer(recipe: Recipe, learning_rate: float, total_steps: int,
                          steps_per_epoch: int):
    """larq's ``CaseOptimizer``: ``recipe.binary_optimizer`` on the binary kernels
    (``Bop.is_binary_variable``) at ``binary_learning_rate`` scaled as
    ``learning_rate`` is, ``recipe.optimizer`` on the rest; both on the
    recipe's schedule. larq's wrapper takes Keras's legacy optimisers (as
    larq-zoo's QuickNet task uses it)."""
    import larq as lq

    legacy = tf.keras.optimizers.legacy
    scale = learning_rate / recipe.learning_rate

    def make(kind: str, rate: float):
        schedule = make_schedule(recipe, rate, total_steps, steps_per_epoch)
        if kind == "adam":
            return legacy.Adam(learning_rate=schedule, epsilon=recipe.adam_epsilon)
        if kind == "sgd":
            return legacy.SGD(learning_rate=schedule, momentum=recipe.momentum)
        raise ValueError(f"Unknown optimizer {kind!r}.")

    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable,
         make(recipe.binary_optimizer, recipe.binary_learning_rate * scale)),
        default_optimizer=make(recipe.optimizer, learning_rate))


def add_l2_penalty(model: tf.keras.Model, weights: list[tf.Variable], weight_decay: float):
    r"""Coupled weight decay: \( \tfrac{\lambda}{2} \sum_w \lVert w \rVert^2 \) added to
    ``model``'s loss, so each of ``weights`` gets \( \lambda w \) in its gradient."""
    if weights:
        model.add_loss(lambda: 0.5 * weight_decay * tf.add_n(
            [tf.reduce_sum(tf.square(w)) for w in weights]))


def decayed_weights(model: tf.keras.Model, mode: str, undecayed: list[tf.Variable]):
    """The trainable weights that coupled ("l2") decay reaches: all but
    ``undecayed``, or ("l2_kernels") only convolution and dense kernels, the
    last dense layer's (the classifier) excepted."""
    kept = {id(w) for w in undecayed}
    weights = [w for w in model.trainable_weights if id(w) not in kept]
    if mode == "l2_kernels":
        def layers(m):
            for layer in m.layers:
                yield from layers(layer) if isinstance(layer, tf.keras.Model) else [layer]

        kinds = (tf.keras.layers.Conv2D, tf.keras.layers.Dense)
        found = [layer for layer in layers(model) if isinstance(layer, kinds)]
        dense = [layer for layer in found if isinstance(layer, tf.keras.layers.Dense)]
        kernels = {id(layer.kernel) for layer in found if not dense or layer is not dense[-1]}
        weights = [w for w in weights if id(w) in kernels]
    return weights


def make_loss(label_smoothing: float) -> tf.keras.losses.Loss:
    return tf.keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def make_metrics():
    return [
        tf.keras.metrics.CategoricalAccuracy(name="accuracy"),
        tf.keras.metrics.TopKCategoricalAccuracy(5, name="top5"),
    ]
