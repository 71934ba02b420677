"""The model registry: every network is listed and built by name.

A model is a keyword-only function in larq-zoo's signature, registered under
its own name (timm's registry is the model). The functions are generated, not
written out: ``register_factory`` makes one for a ``zoo.core.ModelFactory``
subclass, named as the factory names its model, with a docstring written from
that model's facts (``zoo.model_docs.ModelDoc``)::

    bireal34 = register_factory(BiRealNet34, ModelDoc("Bi-Real Net with 34 layers ...",
                                                      references=(...)),
                                paper="...", paper_top1=62.2, twin="resnet34")

so that ``bireal34(*, input_shape=None, input_tensor=None, weights=None,
include_top=True, num_classes=None, filters=None)`` builds
``BiRealNet34(...).build()``. ``model_function`` makes one for any builder
(larq-zoo's own models, ``zoo.larq_zoo_models``).

``python cli.py train bireal18`` and ``zoo.get_model("bireal18")`` are the same
code path: the CLI only looks names up here.
"""

from dataclasses import dataclass
from typing import Callable, Optional
from collections.abc import Sequence

import tensorflow as tf

from bnnzoo.errors import UnknownName

from .model_docs import ModelDoc, docstring


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and what its paper reports."""

    name: str
    build: Callable[..., tf.keras.Model]
    paper: str
    paper_top1: Optional[float] = None  # top-1 (%) on paper_top1_dataset, as reported
    recipe: str = "bireal"  # name of the training recipe in zoo.recipes
    paper_flops: Optional[float] = None  # FLOPs at 224x224 as the paper counts them
    twin: Optional[str] = None  # the real-valued twin whose weights initialise it
    paper_top1_dataset: str = "ImageNet"  # where paper_top1 was measured
    larq_zoo: str = ""  # larq-zoo's function that builds it ("larq_zoo.sota.QuickNet"), if any


_REGISTRY: dict[str, ModelEntry] = {}


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


def model_function(name: str, build: Callable[..., tf.keras.Model], doc: str,
                   module: str = __name__) -> Callable[..., tf.keras.Model]:
    """The public function ``name`` (of ``module``) with larq-zoo's keyword-only
    arguments and the width ``filters``, passing them to ``build``."""

    def model(*, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None,
              weights: Optional[str] = None, include_top: bool = True,
              num_classes: Optional[int] = None,
              filters: Optional[int] = None) -> tf.keras.Model:
        return build(input_shape=input_shape, input_tensor=input_tensor, weights=weights,
                     include_top=include_top, num_classes=num_classes, filters=filters)

    model.__name__ = model.__qualname__ = name
    model.__doc__, model.__module__ = doc, module
    return model


def register_factory(factory, doc: ModelDoc, **entry) -> Callable[..., tf.keras.Model]:
    """Register ``factory`` (a ``zoo.core.ModelFactory`` subclass) under its
    model's name: a generated ``model_function`` that builds
    ``factory(...).build()``, its docstring ``doc`` with the factory's default
    input shape and class count. ``entry``: ``register_model``'s arguments."""

    def build(**arguments) -> tf.keras.Model:
        return factory(**arguments).build()

    text = docstring(doc, input_shape=factory.default_input_shape,
                     num_classes=factory.default_num_classes)
    return register_model(**entry)(model_function(factory.name, build, text,
                                                  factory.__module__))


def list_models() -> list[str]:
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
