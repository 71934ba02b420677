"""The model registry: every network is listed and built by name.

A model is a keyword-only function in larq-zoo's signature, its docstring
written beside it, registered under its own name (timm's registry is the
model)::

    @register_model(paper="...", paper_top1=56.4, recipe="bireal", twin="resnet18")
    def bireal18(*, input_shape=None, input_tensor=None, weights=None,
                 include_top=True, num_classes=None, filters=None):
        # docstring: what it is, the paper's metrics, arguments, references
        return BiRealNet18(input_shape=input_shape, ...).build()

``python cli.py train bireal18`` and ``zoo.get_model("bireal18")`` are the same
code path: the CLI only looks names up here.
"""

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import tensorflow as tf

from bnnzoo.errors import UnknownName


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and what its paper reports."""

    name: str
    build: Callable[..., tf.keras.Model]
    paper: str
    paper_top1: Optional[float] = None  # top-1 (%) on paper_top1_dataset, as reported
    recipe: str = "bireal"  # name of the training recipe in training.recipes
    paper_flops: Optional[float] = None  # FLOPs at 224x224 as the paper counts them
    twin: Optional[str] = None  # the real-valued twin whose weights initialise it
    paper_top1_dataset: str = "ImageNet"  # where paper_top1 was measured
    larq_zoo: str = ""  # larq-zoo's function that builds it ("larq_zoo.sota.QuickNet"), if any


_REGISTRY: Dict[str, ModelEntry] = {}


def register_model(*, paper: str, paper_top1: Optional[float] = None, recipe: str = "bireal",
                   paper_flops: Optional[float] = None, twin: Optional[str] = None,
                   paper_top1_dataset: str = "ImageNet", larq_zoo: str = ""):
    """Decorator: add a larq-zoo-style builder to the registry under its function's name."""

    def wrap(fn):
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"Model {fn.__name__!r} is registered twice.")
        _REGISTRY[fn.__name__] = ModelEntry(fn.__name__, fn, paper, paper_top1, recipe,
                                            paper_flops, twin, paper_top1_dataset, larq_zoo)
        return fn

    return wrap


def list_models() -> List[str]:
    """Names of every registered model, sorted."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an ``UnknownName`` (a ``KeyError``) naming the choices if absent."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownName(
            f"Unknown model {name!r}. Available: {', '.join(list_models())}."
        ) from None


def get_model(name: str, **kwargs) -> tf.keras.Model:
    """Build the registered model ``name`` with larq-zoo's keyword arguments
    (``input_shape``, ``input_tensor``, ``weights``, ``include_top``,
    ``num_classes``) and the width ``filters``."""
    return model_entry(name).build(**kwargs)
