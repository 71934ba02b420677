"""Top-1 / top-5 accuracy of a trained model on a dataset's test split."""

from pathlib import Path
from typing import Optional

import tensorflow as tf

from bnnzoo import datasets

from . import recipes
from .train import load_source


def evaluate_model(model: tf.keras.Model, data: datasets.Dataset, *, batch_size: int = 256,
                   limit: Optional[int] = None) -> dict:
    """Accuracy of ``model`` on ``data``'s test split (its first ``limit`` images)."""
    if model.output_shape[-1] != data.num_classes:
        raise ValueError(
            f"The model predicts {model.output_shape[-1]} classes but {data.name} has "
            f"{data.num_classes}."
        )
    ds = datasets.pipeline(data, "test", image_shape=model.input_shape[1:], batch_size=batch_size,
                           limit=limit)
    model.compile(loss=recipes.make_loss(0.0), metrics=recipes.make_metrics())
    results = model.evaluate(ds, verbose=0, return_dict=True)
    examples = min(limit, data.examples("test")) if limit else data.examples("test")
    return {"top1": float(results["accuracy"]), "top5": float(results["top5"]),
            "loss": float(results["loss"]), "examples": int(examples),
            "dataset": data.name, "source": data.source}


def evaluate(target: Optional[Path] = None, *, dataset: Optional[str] = None,
             data_dir: Optional[str] = None, batch_size: int = 256,
             limit: Optional[int] = None) -> dict:
    """Evaluate a run (default: the latest) or a saved Keras model file.

    A run and a model file inside a run bring their own dataset; ``dataset`` /
    ``data_dir`` override it. (Flatbuffers: ``bnnzoo.export.evaluate_flatbuffer``.)
    """
    target = Path(target) if target is not None else None
    source = load_source(target)
    if dataset is None:
        dataset, data_dir = source.dataset, data_dir or source.data_dir
    if dataset is None:
        raise ValueError(f"Evaluating the model file {target} needs --dataset.")
    data = datasets.load(dataset, data_dir)
    report = evaluate_model(source.model, data, batch_size=batch_size, limit=limit)
    return {"model": str(source.path), **report}
