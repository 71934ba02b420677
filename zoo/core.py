"""The zoo's core: the factory every family builds on (larq-zoo's ``ModelFactory``).

``ModelFactory.build`` is the one template every network follows:

    image input -> stem -> body -> head (if include_top) -> tf.keras.Model -> weights

A family (``BiRealNetFactory``, ``SiManLayers`` on it, ``Real2BinFactory``, ...)
writes its ``stem`` and ``body`` (and ``head`` where it is not the pooled
dense softmax); a model of the family is a subclass that changes attributes
(``name``, ``stage_blocks``, ``filters``, quantizers). The core owns what every
family shares:

* larq-zoo's arguments (``input_shape``, ``input_tensor``, ``weights``,
  ``include_top``, ``num_classes``) and the width ``filters``, checked once;
* the **small-image rule**: inputs of at most ``SMALL_IMAGE_MAX_SIDE`` (64)
  pixels on their shorter side get a family's small-image stem (no early
  downsampling), as CIFAR-sized networks do; ``datasets.preprocessing`` takes
  the same boundary from here;
* the default input shape (``None``: larq-zoo's 224x224x3) and class count;
* the **ImageNet weights** table ``imagenet_weights = {include_top: (file,
  sha256)}`` of a larq-zoo release (``imagenet_release``), downloaded once and
  checked against its SHA-256. Those weights were trained with binary
  convolutions padding "same" borders with 0, so ``weights="imagenet"``
  builds the network with ``pad_values = 0.0`` (the zoo's own default is +1,
  the padding LCE computes on bitpacked tensors directly);
* **attention points** (``attention_point``): identity layers a model places
  where a teacher and a student are compared (Real-to-Binary's distillation
  reads them with ``attention_points``). The layer's class is the declaration,
  so it survives saving and loading.
"""

import re
from typing import Optional
from collections.abc import Sequence

import tensorflow as tf
from larq_zoo.core import utils as lqz_utils

from bnnzoo.errors import UserError

#: Inputs at most this many pixels on their shorter side use the small-image stem.
SMALL_IMAGE_MAX_SIDE = 64


def uses_small_image_stem(input_shape: Sequence[Optional[int]]) -> bool:
    """True when the image is small (<= 64 px on its shorter known side)."""
    sides = [s for s in input_shape[:2] if s]
    return bool(sides) and min(sides) <= SMALL_IMAGE_MAX_SIDE


@tf.keras.utils.register_keras_serializable(package="bnnzoo")
class AttentionPoint(tf.keras.layers.Layer):
    """The identity, marking a block output where distillation compares a
    teacher's and a student's attention maps (see ``attention_points``)."""

    def call(self, inputs):
        return inputs


#: How models saved without ``AttentionPoint`` layers (this zoo's before it had
#: them, larq-zoo's ``RealToBinaryNet``) name their block outputs.
_BLOCK_OUT = re.compile(r".*block_\d+_out")


def attention_points(model: tf.keras.Model) -> list[tf.Tensor]:
    """The outputs of ``model``'s attention points, in order; in a model saved
    without them, the layers named ``..._block_N_out``."""
    points = [layer for layer in model.layers if isinstance(layer, AttentionPoint)]
    if not points:
        points = [layer for layer in model.layers if _BLOCK_OUT.fullmatch(layer.name)]
    return [layer.output for layer in points]


class ModelFactory:
    """Builds one network; a family subclasses it, a model changes attributes."""

    name = "model"
    filters = 64  # the first stage's width: ``filters`` (``--width``) scales every layer
    min_filters = 1
    default_input_shape: Optional[tuple[int, int, int]] = None  # larq-zoo's (224, 224, 3)
    default_num_classes = 1000
    pad_values = 1.0  # binary convolutions' "same" border value (LCE's native +1)
    imagenet_release: Optional[tuple[str, str]] = None  # larq-zoo's (model, version)
    imagenet_weights: dict[bool, tuple[str, str]] = {}  # {include_top: (file, sha256)}

    def __init__(self, *, input_shape: Optional[Sequence[Optional[int]]] = None,
                 input_tensor=None, weights: Optional[str] = None, include_top: bool = True,
                 num_classes: Optional[int] = None, filters: Optional[int] = None):
        if weights == "imagenet":
            self._check_imagenet(input_shape, filters)
            self.pad_values = 0.0  # as the published weights were trained
        if filters is not None:
            if filters < self.min_filters:
                least = "positive" if self.min_filters == 1 else f"at least {self.min_filters}"
                raise UserError(f"filters must be {least}; got {filters}.")
            self.filters = filters
        if input_shape is None and input_tensor is None:
            input_shape = self.default_input_shape
        if num_classes is None:
            num_classes = self.default_num_classes
        input_shape = lqz_utils.validate_input(input_shape, weights, include_top, num_classes)
        self.image_input = lqz_utils.get_input_layer(input_shape, input_tensor)
        self.weights, self.include_top, self.num_classes = weights, include_top, num_classes

    def _check_imagenet(self, input_shape, filters) -> None:
        if not self.imagenet_weights:
            raise UserError(f"There are no published ImageNet weights for {self.name}; "
                             "use weights=None or a weights file.")
        if filters is not None and filters != self.filters:
            raise UserError(f"The ImageNet weights are for width {self.filters} "
                             f"(filters={self.filters}).")
        if input_shape is not None and (uses_small_image_stem(input_shape)
                                        or input_shape[-1] != 3):
            raise UserError(
                "weights='imagenet' needs RGB inputs larger than "
                f"{SMALL_IMAGE_MAX_SIDE} px (the ImageNet stem); got {tuple(input_shape)}.")

    # --- the template: a family writes stem and body, and head where it differs

    def stem(self, x):
        raise NotImplementedError

    def body(self, x):
        raise NotImplementedError

    def head(self, x):
        """Global average pool -> ``classifier``."""
        return self.classifier(lqz_utils.global_pool(x))

    def classifier(self, x):
        """Dense -> softmax (in float32 under mixed precision)."""
        x = tf.keras.layers.Dense(self.num_classes)(x)
        return tf.keras.layers.Activation("softmax", dtype="float32")(x)

    def attention_point(self, x, name: str):
        return AttentionPoint(name=name)(x)

    def build(self) -> tf.keras.Model:
        x = self.body(self.stem(self.image_input))
        if self.include_top:
            x = self.head(x)
        model = tf.keras.Model(inputs=self.image_input, outputs=x, name=self.name)
        self.load_weights(model)
        return model

    def load_weights(self, model: tf.keras.Model) -> None:
        """larq-zoo's published file (pinned SHA-256) for ``"imagenet"``, else a local file."""
        if self.weights == "imagenet":
            file, sha256 = self.imagenet_weights[self.include_top]
            release, version = self.imagenet_release
            model.load_weights(lqz_utils.download_pretrained_model(
                model=release, version=version, file=file, file_hash=sha256))
        elif self.weights is not None:
            model.load_weights(self.weights)
