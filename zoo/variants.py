r"""One architecture, switchable quantizers: the training stages of a binary net.

A variant is the same network with the quantizers of its binary layers
swapped, built as a fresh clone (weights are then copied by structure, see
``training.initialise``):

* ``binary``: as registered (1-bit activations and weights);
* ``binary_activations``: 1-bit activations, real weights (no kernel
  quantizer or clip): step 1 of Bi-Real's two-step scheme for deep nets;
* ``soft_activations``: a real-valued, sign-like activation instead of the
  sign, real weights, zero padding: stage 1 of Real-to-Binary's progressive
  pipeline, which declares it with its tanh (``zoo.real2bin``,
  ``register_variant``);
* ``real``: no quantizers at all (identity activations, real weights, zero
  padding): the same architecture as a real-valued network, Real-to-Binary's
  stage-0 teacher;
* ``magnitude_weights``: binary, the kernels
  \( \alpha_c \operatorname{sign}(W) \) with
  \( \alpha_c = \operatorname{mean}_c |W| \) (Bi-Real's magnitude-aware sign,
  XNOR-Net's analytic weight scale; LCE folds \( \alpha_c \) into
  ``LceBconv2d``'s multiplier): the fully binary stage of a net with no
  per-channel scale after its binary convolutions (``real2bin``'s gates) starts
  where its real-weight stage ended (``training.switch``: \( s_c = 1 \));
* ``unscaled_weights``: \( \alpha_c \operatorname{sign}(W) \) replaced by
  \( \operatorname{sign}(W) \), for the optional BatchNorm-only recalibration
  after dropping the weight scale (the official Bi-Real code).
"""

from typing import Callable

import tensorflow as tf

from bnnzoo.errors import UserError

from .binary_layers import is_binary_operation

_KEEP = object()


def with_quantizers(model: tf.keras.Model, *, kernel_quantizer=_KEEP, kernel_constraint=_KEEP,
                    input_quantizer=_KEEP, pad_values=_KEEP) -> tf.keras.Model:
    """A fresh clone of ``model`` whose binary layers get the given kernel quantizer,
    constraint, input quantizer or padding value (``None`` removes a quantizer);
    every other layer is cloned unchanged."""
    changes = {key: value for key, value in (
        ("kernel_quantizer", kernel_quantizer), ("kernel_constraint", kernel_constraint),
        ("input_quantizer", input_quantizer), ("pad_values", pad_values)) if value is not _KEEP}

    def clone(layer):
        config = layer.get_config()
        if is_binary_operation(layer):
            config.update(changes)
        return layer.__class__.from_config(config)

    clone_model = tf.keras.models.clone_model(model, clone_function=clone)
    clone_model._name = model.name
    return clone_model


VARIANTS: dict[str, Callable[[tf.keras.Model], tf.keras.Model]] = {
    "binary": lambda model: model,
    "binary_activations": lambda model: with_quantizers(model, kernel_quantizer=None,
                                                        kernel_constraint=None),
    "real": lambda model: with_quantizers(model, input_quantizer=None, kernel_quantizer=None,
                                          kernel_constraint=None, pad_values=0.0),
    "unscaled_weights": lambda model: with_quantizers(model, kernel_quantizer="ste_sign"),
    "magnitude_weights": lambda model: with_quantizers(
        model, kernel_quantizer="bireal_magnitude_aware_sign"),
}


def register_variant(name: str, make: Callable[[tf.keras.Model], tf.keras.Model]) -> None:
    """Declare the variant ``name`` (a family's own stage), built by ``make``."""
    if name in VARIANTS:
        raise ValueError(f"Variant {name!r} is declared twice.")
    VARIANTS[name] = make


def variant(model: tf.keras.Model, name: str) -> tf.keras.Model:
    if name not in VARIANTS:
        raise UserError(f"Unknown variant {name!r}. Variants: {', '.join(VARIANTS)}.")
    return VARIANTS[name](model)
