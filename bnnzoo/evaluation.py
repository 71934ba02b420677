"""Evaluation: top-1 / top-5 of any trained artefact on a dataset's test split.

``evaluate`` takes a run directory (default: the latest run), a Keras model
file (``.h5`` or a SavedModel folder), or an exported ``.tflite`` flatbuffer,
which runs in LCE's interpreter: the deployed model's own accuracy. The
dataset is the one given, else the one recorded with the model (its run's
``config.json``, the flatbuffer's export report), its class count checked
(``runs.dataset_for``, shared with the export's parity check).

It reads runs (``bnnzoo.runs``), datasets and flatbuffers (``bnnzoo.export``);
neither ``training`` nor ``export`` imports it.
"""

from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from bnnzoo import datasets, runs
from bnnzoo.errors import UserError
from bnnzoo.progress import KerasProgress, Progress
from bnnzoo.export import flatbuffer as fb
from bnnzoo.export.parity import EVALUATION_THREADS, predict_batches
from bnnzoo.export.pipeline import report_path


def evaluate(target: Optional[Path] = None, *, dataset: Optional[str] = None,
             data_dir: Optional[str] = None, batch_size: int = 256,
             limit: Optional[int] = None, num_threads: int = EVALUATION_THREADS) -> dict:
    """Top-1 / top-5 of ``target`` on the test split (its first ``limit`` images).

    ``target``: a run directory (default: the latest run), a Keras model file,
    or a ``.tflite`` flatbuffer (LCE's interpreter, ``num_threads`` threads).
    ``dataset`` / ``data_dir`` override the dataset recorded with it; a model
    file outside a run directory, or a flatbuffer without its export report,
    needs ``dataset``. The report: ``model``, ``top1``, ``top5``, ``examples``,
    ``dataset``, ``source``, and ``loss`` (Keras) or ``runtime`` (flatbuffer).
    """
    target = Path(target) if target is not None else None
    if target is not None and target.suffix == ".tflite":
        return _evaluate_flatbuffer(target, dataset=dataset, data_dir=data_dir,
                                    batch_size=batch_size, limit=limit, num_threads=num_threads)
    source = runs.load_source(target)
    data, _, _ = runs.dataset_for(
        source.model.output_shape[-1], str(source.path), dataset=dataset, data_dir=data_dir,
        recorded=(source.dataset, source.data_dir),
        missing=f"Evaluating the model file {target} needs --dataset (it is not in a run directory).")
    return {"model": str(source.path), **evaluate_model(source.model, data, batch_size=batch_size,
                                                        limit=limit)}


def evaluate_model(model: tf.keras.Model, data: datasets.Dataset, *, batch_size: int = 256,
                   limit: Optional[int] = None) -> dict:
    """Top-1 / top-5 / loss of a Keras ``model`` in memory on ``data``'s test
    split (its first ``limit`` images)."""
    if model.output_shape[-1] != data.num_classes:
        raise UserError(f"The model predicts {model.output_shape[-1]} classes but {data.name} "
                         f"has {data.num_classes}.")
    ds = datasets.pipeline(data, "test", image_shape=model.input_shape[1:],
                           batch_size=batch_size, limit=limit)
    model.compile(loss=tf.keras.losses.CategoricalCrossentropy(), metrics=[
        tf.keras.metrics.CategoricalAccuracy(name="accuracy"),
        tf.keras.metrics.TopKCategoricalAccuracy(5, name="top5")])
    examples = min(limit, data.examples("test")) if limit else data.examples("test")
    progress = KerasProgress(Progress(f"Evaluating {model.name}", examples), batch_size)
    results = model.evaluate(ds, verbose=0, return_dict=True, callbacks=[progress])
    return {"top1": float(results["accuracy"]), "top5": float(results["top5"]),
            "loss": float(results["loss"]), "examples": int(examples), "dataset": data.name,
            "source": data.source}


def _evaluate_flatbuffer(path: Path, *, dataset: Optional[str], data_dir: Optional[str],
                         batch_size: int, limit: Optional[int], num_threads: int) -> dict:
    buf = fb.read_flatbuffer(path)
    recorded = runs.read_json(report_path(path), default={})
    data, _, _ = runs.dataset_for(
        fb.output_shape(buf)[-1], str(path), dataset=dataset, data_dir=data_dir,
        recorded=(recorded.get("dataset"), recorded.get("data_dir")),
        missing=f"Evaluating {path} needs --dataset (it has no export report).")
    batches = datasets.pipeline(data, "test", image_shape=fb.input_shape(buf), batch_size=batch_size,
                                limit=limit)
    top1 = top5 = seen = 0
    examples = min(limit, data.examples("test")) if limit else data.examples("test")
    with Progress(f"Evaluating {path.name}", examples) as progress:
        for outputs, labels in predict_batches(buf, batches, num_threads=num_threads):
            truth = labels.argmax(-1)
            best5 = np.argsort(-outputs, axis=-1)[:, :5]
            top1 += int((best5[:, 0] == truth).sum())
            top5 += int((best5 == truth[:, None]).any(-1).sum())
            seen += len(truth)
            progress.update(len(truth))
    return {"model": str(path), "runtime": "LCE interpreter", "top1": top1 / seen,
            "top5": top5 / seen, "examples": seen, "dataset": data.name, "source": data.source}
