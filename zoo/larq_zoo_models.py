"""larq-zoo's own models in the registry, built by larq-zoo's functions.

Each entry is a keyword-only function in the registry's signature that calls
larq-zoo's public builder (``larq_zoo.sota.QuickNet``,
``larq_zoo.literature.XNORNet``, ...): the architecture is larq-zoo's, layer
for layer, never re-implemented here. What differs from calling larq-zoo
directly:

* ``weights`` defaults to ``None`` (random), as for every model of the
  registry; ``weights="imagenet"`` goes through larq-zoo's own loader (its
  release file, pinned SHA-256, cached by Keras under
  ``$KERAS_HOME/larq/models/``, default ``~/.keras``), and a download that
  fails is one ``WeightsUnavailable`` error naming the file and the cache;
* ``num_classes`` defaults to 1000 and ``filters`` is refused unless ``None``:
  larq-zoo's models have one width;
* the small-image rule of ``zoo.core`` does not apply: larq-zoo's stems stay
  as they are at every input. The least input a model can use is read from
  its graph (``zoo.input_side``) and stated when training refuses a smaller one.

The published figures in each docstring are larq-zoo's (its docstrings,
larq-zoo 2.4.0), quoted, not measured here.
"""

import functools
import os
from typing import Callable

import tensorflow as tf

from bnnzoo.errors import UserError

from .registry import model_function, register_model

#: larq-zoo's public builders, by registry name, and the registry's record of
#: each: (larq-zoo function, paper, larq-zoo's published ImageNet top-1 (%),
#: recipe name in ``zoo.recipes``).
LARQ_ZOO_MODELS = {
    "quicknet_small": ("sota.QuickNetSmall", 59.4, "quicknet"),
    "quicknet": ("sota.QuickNet", 63.3, "quicknet"),
    "quicknet_large": ("sota.QuickNetLarge", 66.9, "quicknet"),
    "xnornet": ("literature.XNORNet", 44.96, "xnornet"),
    "binary_alexnet": ("literature.BinaryAlexNet", 36.30, "binary_alexnet"),
    "binary_resnet_e18": ("literature.BinaryResNetE18", 58.32, "binary_resnet_e18"),
    "binary_densenet28": ("literature.BinaryDenseNet28", 60.91, "binary_densenet28"),
    "binary_densenet37": ("literature.BinaryDenseNet37", 62.89, "binary_densenet37"),
    "binary_densenet45": ("literature.BinaryDenseNet45", 64.59, "binary_densenet45"),
    "meliusnet22": ("literature.MeliusNet22", 62.4, "meliusnet22"),
    "dorefanet": ("literature.DoReFaNet", 53.39, "dorefanet"),
}

PAPERS = {
    "quicknet": ("Bannink et al., Larq Compute Engine (QuickNet), MLSys 2021",
                 "[Larq Compute Engine: Design, Benchmark, and Deploy State-of-the-Art "
                 "Binarized Neural Networks](https://arxiv.org/abs/2011.09398)"),
    "xnornet": ("Rastegari et al., XNOR-Net, ECCV 2016",
                "[XNOR-Net: ImageNet Classification Using Binary Convolutional Neural "
                "Networks](https://arxiv.org/abs/1603.05279)"),
    "binary_alexnet": ("Hubara et al., Binarized Neural Networks, NIPS 2016",
                       "[Binarized Neural Networks](https://arxiv.org/abs/1602.02830)"),
    "bethge": ("Bethge et al., Back to Simplicity (BinaryDenseNet, ResNetE), 2019",
               "[Back to Simplicity: How to Train Accurate BNNs from "
               "Scratch?](https://arxiv.org/abs/1906.08637)"),
    "meliusnet22": ("Bethge et al., MeliusNet, 2020",
                    "[MeliusNet: Can Binary Neural Networks Achieve MobileNet-level "
                    "Accuracy?](https://arxiv.org/abs/2001.05936)"),
    "dorefanet": ("Zhou et al., DoReFa-Net, 2016",
                  "[DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with "
                  "Low Bitwidth Gradients](https://arxiv.org/abs/1606.06160)"),
}
PAPER_OF = {"quicknet_small": "quicknet", "quicknet": "quicknet", "quicknet_large": "quicknet",
            "xnornet": "xnornet", "binary_alexnet": "binary_alexnet",
            "binary_resnet_e18": "bethge", "binary_densenet28": "bethge",
            "binary_densenet37": "bethge", "binary_densenet45": "bethge",
            "meliusnet22": "meliusnet22", "dorefanet": "dorefanet"}

NOTES = {
    "dorefanet": "Its activations are 2-bit (``DoReFaQuantizer(k_bit=2)``), not 1-bit: LCE "
                 "has no bitpacked operator for them, so ``export`` finds no binary layer "
                 "to bitpack and refuses it.",
    "meliusnet22": "larq-zoo publishes no training task for it; ``train`` uses its "
                   "BinaryDenseNet-28 task's values (the same authors' family).",
    "xnornet": "Its last binary convolution is 6x6 \"valid\" on a 6x6 map, so it needs "
               "217 px or more.",
}


class WeightsUnavailable(UserError, OSError):
    """larq-zoo's published weights could not be fetched (no internet, no cached file)."""


def larq_zoo_builder(name: str) -> Callable[..., tf.keras.Model]:
    """larq-zoo's public function for the registry name ``name``."""
    import larq_zoo

    module, function = LARQ_ZOO_MODELS[name][0].split(".")
    return getattr(getattr(larq_zoo, module), function)


def build_larq_zoo_model(name: str, *, input_shape=None, input_tensor=None, weights=None,
                         include_top=True, num_classes=None, filters=None) -> tf.keras.Model:
    """Build ``name`` with larq-zoo's own function (see the module docstring)."""
    if filters is not None:
        raise UserError(f"{name} is larq-zoo's model at its one width: filters (--width) "
                         "cannot change it.")
    num_classes = 1000 if num_classes is None else num_classes
    try:
        return larq_zoo_builder(name)(input_shape=input_shape, input_tensor=input_tensor,
                                      weights=weights, include_top=include_top,
                                      num_classes=num_classes)
    except Exception as err:  # noqa: BLE001  (get_file raises a bare Exception offline)
        if weights != "imagenet" or "URL fetch failure" not in str(err):
            raise
        cache = os.path.join(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"),
                             "larq", "models")
        raise WeightsUnavailable(
            f"weights='imagenet' for {name} could not be fetched from larq-zoo's releases "
            f"(github.com/larq/zoo/releases): {str(err).splitlines()[0]} Without internet, "
            f"put the release file in {cache}/ (larq-zoo's own cache; its SHA-256 is "
            "checked).") from None


def _docstring(name: str) -> str:
    function, top1, _ = LARQ_ZOO_MODELS[name]
    published = larq_zoo_builder(name).__doc__ or ""
    table = published.split("# ImageNet Metrics", 1)[-1].split("# Arguments", 1)[0].strip()
    note = NOTES.get(name, "")
    return f"""larq-zoo's ``larq_zoo.{function}``, built by larq-zoo (recipe ``{LARQ_ZOO_MODELS[name][2]}``).
{note}

# ImageNet metrics (larq-zoo's re-training, as larq-zoo 2.4.0 publishes them)

{table}

# Arguments
- input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``. larq-zoo's
  stem at every size; training refuses an input its strides and pooling cannot use.
- input_tensor: optional Keras tensor to use as the image input.
- weights: ``None`` (random), ``"imagenet"`` (larq-zoo's published weights through
  larq-zoo's loader; 224x224x3 with 1000 classes when ``include_top``), or a weights file.
- include_top: whether to end with larq-zoo's classifier.
- num_classes: classes of the classifier; default 1000.
- filters: must be ``None``: larq-zoo's models have one width.

# References
- {PAPERS[PAPER_OF[name]][1]}
- larq-zoo: https://docs.larq.dev/zoo/ ({top1} % top-1 is larq-zoo's figure)
"""


def _register(name: str):
    build = model_function(name, functools.partial(build_larq_zoo_model, name),
                           _docstring(name), __name__)
    function, top1, recipe = LARQ_ZOO_MODELS[name]
    return register_model(paper=PAPERS[PAPER_OF[name]][0], paper_top1=top1, recipe=recipe,
                          paper_top1_dataset="ImageNet (larq-zoo)",
                          larq_zoo=f"larq_zoo.{function}")(build)


quicknet_small = _register("quicknet_small")
quicknet = _register("quicknet")
quicknet_large = _register("quicknet_large")
xnornet = _register("xnornet")
binary_alexnet = _register("binary_alexnet")
binary_resnet_e18 = _register("binary_resnet_e18")
binary_densenet28 = _register("binary_densenet28")
binary_densenet37 = _register("binary_densenet37")
binary_densenet45 = _register("binary_densenet45")
meliusnet22 = _register("meliusnet22")
dorefanet = _register("dorefanet")

__all__ = list(LARQ_ZOO_MODELS)
