"""The model registry: every network is listed and built by name.

``python cli.py train bireal18`` and ``zoo.get_model("bireal18")`` are the same
code path: the CLI only looks names up here.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import tensorflow as tf


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and what its paper reports."""

    name: str
    build: Callable[..., tf.keras.Model]
    paper: str
    paper_top1: Optional[float] = None  # ImageNet top-1 (%), as reported
    recipe: str = "bireal"  # name of the training recipe in training.recipes
    paper_flops: Optional[float] = None  # FLOPs at 224x224 as the paper counts them
    extra: Dict[str, str] = field(default_factory=dict)


_REGISTRY: Dict[str, ModelEntry] = {}


def register_model(
    name: str, *, paper: str, paper_top1: Optional[float] = None, recipe: str = "bireal",
    paper_flops: Optional[float] = None,
):
    """Decorator: add a larq-zoo-style builder to the registry under ``name``."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"Model {name!r} is registered twice.")
        _REGISTRY[name] = ModelEntry(name, fn, paper, paper_top1, recipe, paper_flops)
        return fn

    return wrap


def list_models() -> List[str]:
    """Names of every registered model, sorted."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a ``KeyError`` naming the choices if absent."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"Unknown model {name!r}. Available: {', '.join(list_models())}."
        ) from None


def get_model(name: str, **kwargs) -> tf.keras.Model:
    """Build the registered model ``name`` with larq-zoo's keyword arguments
    (``input_shape``, ``input_tensor``, ``weights``, ``include_top``,
    ``num_classes``)."""
    return model_entry(name).build(**kwargs)
