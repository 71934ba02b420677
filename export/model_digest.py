"""Digests of what decides a model's footprint, and of the code that builds it.

:func:`layers_digest` is a built model's identity for counting: its layers'
classes and configurations (quantizers, widths, strides, ...) without their
names, how they connect, and the shape and type of every weight. Two builds of
the same layers give the same digest in any process, on any machine, whatever
code built them (a function generated from a table or written by hand), so it
keys ``footprints.json`` (:mod:`.footprint_table`).

:func:`sources_digest` is the code of ``zoo/`` and ``quantizers/`` as Python
reads it (its syntax trees without docstrings): a comment, a docstring or the
layout do not change it. While it is the one the footprint table was checked
against, the models need not be built to know their digests are the table's.
"""

import ast
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import tensorflow as tf

from bnnzoo import quantizers, zoo

SOURCES = (Path(zoo.__file__).parent, Path(quantizers.__file__).parent)


def _without_layer_names(config: dict) -> dict:
    """A functional model's configuration with each layer named by its position
    (``#3``), wherever the name stands: Keras numbers unnamed layers in the
    order a process creates them."""
    layers = config.get("layers")
    if not isinstance(layers, list):
        return config
    position = {entry["config"]["name"]: f"#{i}" for i, entry in enumerate(layers)}

    def renamed(value):
        if isinstance(value, str):
            return position.get(value, value)
        if isinstance(value, (list, tuple)):
            return [renamed(item) for item in value]
        if isinstance(value, dict):
            return {key: renamed(item) for key, item in value.items()}
        return value

    described = {key: renamed(value) for key, value in config.items()
                 if key not in ("name", "layers")}
    described["layers"] = [
        {"class_name": entry["class_name"],
         "config": _without_layer_names({k: v for k, v in entry["config"].items() if k != "name"}),
         "inbound_nodes": renamed(entry.get("inbound_nodes", []))}
        for entry in layers]
    return described


def _without_names_or_modules(value):
    """``value`` without the names of nested layers (a quantizer is a layer)
    and without the module a class is defined in: its registered name says
    which class it is, wherever it lives."""
    if isinstance(value, dict):
        is_layer = "name" in value and "trainable" in value
        return {key: _without_names_or_modules(item) for key, item in value.items()
                if not (key == "name" and is_layer)
                and not (key == "module" and "class_name" in value)}
    if isinstance(value, (list, tuple)):
        return [_without_names_or_modules(item) for item in value]
    return value


def layers_digest(model: tf.keras.Model) -> str:
    """SHA-256 of what decides ``model``'s footprint: its layers' classes and
    configurations (quantizers, widths, strides, ...) without their names, how
    they connect, and the shape and type of every weight. The same for every
    build of the same layers, in any process, whatever code built them."""
    config = json.loads(model.to_json())["config"]  # tf-keras's own JSON of numpy values, shapes, dtypes
    described = {"config": _without_names_or_modules(_without_layer_names(config)),
                 "weights": [[[int(d) for d in w.shape], w.dtype.name] for w in model.weights]}
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def code_digest(source: str) -> str:
    """SHA-256 of Python ``source``'s syntax tree without its docstrings:
    comments, docstrings and layout do not change it."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def sources_digest(folders: Iterable[Path] = SOURCES) -> str:
    """One digest of the code of ``zoo/`` and ``quantizers/`` (:func:`code_digest`
    of each file) and of the Python that reads it: while it is the one the table
    was checked against, the models build the same layers without being built."""
    digest = hashlib.sha256(f"python {sys.version_info[0]}.{sys.version_info[1]}\n".encode())
    for folder in folders:
        for path in sorted(Path(folder).glob("*.py")):
            digest.update(f"{path.parent.name}/{path.name} {code_digest(path.read_text())}\n"
                          .encode())
    return digest.hexdigest()
