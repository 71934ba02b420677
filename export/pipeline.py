"""Run directory -> verified flatbuffer + report.

``export_model`` is what ``cli.py export`` runs: load the trained Keras model,
convert it (:mod:`.convert`), prove the result (:mod:`.report`, parity on real
test images, or synthetic inputs without a dataset, with :mod:`.parity`), and only then write ``MODEL-TARGET.tflite``
and ``MODEL-TARGET.report.json`` atomically. A failed proof writes nothing, an
existing file is replaced only when asked, and ``runs/latest-export`` points to
the new file for ``benchmark`` and ``evaluate``. ``compare_with_keras`` runs a
flatbuffer and its Keras model side by side on the test split. (A flatbuffer's
own accuracy: ``bnnzoo.evaluation.evaluate``.)
"""

import datetime
import json
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from bnnzoo import atomic, checksums, datasets, runs
from bnnzoo.errors import OutputExists, UserError
from bnnzoo.progress import Progress
from bnnzoo.quantizers.int8 import int8_ranges
from bnnzoo.zoo.binary_layers import binary_operations

from . import flatbuffer as fb
from .convert import TARGETS, export_flatbuffer
from .dense_as_conv import binary_dense_as_conv
from .int8_weights import on_int8_grid
from .parity import EVALUATION_THREADS, interpreter, paired_top1, parity_report, predict
from .report import ExportError, check_report, export_report

EXPORT_DIR = "export"


def report_path(flatbuffer: Path) -> Path:
    """``x.tflite`` -> ``x.report.json`` beside it."""
    return Path(flatbuffer).with_suffix(".report.json")


def _check_writable(path: Path, overwrite: bool) -> None:
    if path.suffix != ".tflite":
        raise UserError(f"The output file must end in .tflite, got {path}.")
    for existing in (path, report_path(path)):
        if existing.exists() and not overwrite:
            raise OutputExists(f"{existing} already exists; choose another --output or "
                               "pass --overwrite to replace it.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise UserError(f"Cannot write to {path.parent}: {err.strerror or err}.") from None


def first_test_images(data: datasets.Dataset, image_shape, count: int) -> np.ndarray:
    """The first ``count`` test images, preprocessed for a model input."""
    batches = datasets.pipeline(data, "test", image_shape=image_shape, batch_size=count,
                                limit=count)
    return next(iter(batches))[0].numpy()


#: How the report names parity inputs drawn without a dataset.
SYNTHETIC = "synthetic inputs, uniform(-1, 1)"


def synthetic_inputs(image_shape, count: int, seed: int = 0) -> np.ndarray:
    """``count`` inputs drawn uniformly from [-1, 1], as LCE's own end-to-end
    tests draw them: parity for a model without a matching dataset at hand."""
    shape = (count, *(int(d) for d in image_shape))
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def export_model(source_path: Optional[Path] = None, *, target: str = "arm64",
                 output: Optional[Path] = None, dataset: Optional[str] = None,
                 data_dir: Optional[str] = None, parity_images: int = 256,
                 min_agreement: Optional[float] = None, int8: bool = False,
                 int8_io: bool = False, overwrite: bool = False) -> tuple[Path, dict]:
    """Export a run (default: the latest) or a Keras model file; return (file, report).

    Parity runs on the first ``parity_images`` test images of ``dataset`` (or
    of the run's recorded dataset); with neither, on synthetic inputs
    (:func:`synthetic_inputs`), and the report's ``parity.inputs`` says so. It
    fails when the flatbuffer differs from the Keras model beyond the model's
    own rounding noise (:mod:`.rounding_noise`), or, if ``min_agreement`` is
    given, when the top-1 agreement is below it.

    ``int8=True`` exports the run's int8 stage (``RUN/int8``, written by
    ``training.int8_stage.quantize``; or a model file with int8 ranges): the
    real-valued layers int8, the binary ones ``LceBconv2d``, its kernels
    first put on the int8 grid the device uses (:mod:`.int8_weights`) so
    that parity compares like with like. A model with int8 ranges always
    exports this way.

    Raises :class:`ExportError` if a binary layer is not bitpacked, parity
    fails, or (int8) a real-valued layer kept float weights or float
    arithmetic is left between int8 layers; nothing is written then.
    """
    _check_options(target, parity_images)
    source = runs.load_source(source_path)
    folder = source.run_dir / EXPORT_DIR if source.run_dir else source.path.parent
    if int8 and not int8_ranges(source.model):
        source = runs.load_source(_int8_stage_model(source))
    model = source.model
    int8 = bool(int8_ranges(model))
    if int8:
        on_int8_grid(model)
    output = Path(output or folder / f"{source.name}-{target}{'-int8' if int8 else ''}.tflite")
    _check_writable(output, overwrite)
    _check_binary(model, source.path)
    data, dataset, data_dir = _parity_dataset(source, dataset, data_dir)

    # Parity compares the flatbuffer with the model as loaded, before this rewrite.
    converted, dense = binary_dense_as_conv(model)
    buf = export_flatbuffer(converted, target, int8_io=int8_io)
    report = {
        "flatbuffer": output.name, "model": source.name, "target": target,
        "source": str(source.path), "dataset": dataset, "data_dir": data_dir, "int8_edges": int8,
        "input_shape": [int(d) for d in model.input_shape[1:]],
        **export_report(converted, buf),
    }
    report["binary_dense"] = _binary_dense_report(dense, report)
    images, inputs = _parity_inputs(data, model.input_shape[1:], parity_images)
    report["parity"] = {**parity_report(model, buf, images, int8=int8), "inputs": inputs,
                        "min_agreement": min_agreement}
    report["created"] = datetime.datetime.now().isoformat(timespec="seconds")
    report["versions"] = runs.package_versions()
    check_report(report, min_agreement)
    _write_export(output, buf, report, overwrite)
    runs.set_latest_export(output)
    return output, report


def _check_options(target: str, parity_images: int) -> None:
    if target not in TARGETS:
        raise UserError(f"Unknown target {target!r}. Targets: {', '.join(TARGETS)}.")
    if parity_images < 1:
        raise UserError("--parity-images must be at least 1.")


def _int8_stage_model(source: runs.ModelSource) -> Path:
    """The model file of ``source``'s int8 stage; :class:`ExportError` if it has none."""
    stage = source.run_dir / runs.INT8_STAGE if source.run_dir else None
    if stage is None or not (stage / runs.MODEL).is_file():
        raise ExportError(
            f"{source.path} has no int8 stage: run `cli.py quantize "
            f"{source.run_dir or 'RUN'}` first (calibrated ranges and a quantization-aware "
            "fine-tune on the run's training data), then export with --int8.")
    return stage / runs.MODEL


def _check_binary(model, path: Path) -> None:
    if not binary_operations(model):
        raise ExportError(
            f"{path} has no binary layers (1-bit input and kernel): nothing to "
            "bitpack. Export binary models only.")


def _parity_dataset(source: runs.ModelSource, dataset: Optional[str], data_dir: Optional[str]):
    """``(data, dataset, data_dir)`` for parity: the one asked for or the run's
    recorded one; ``data`` is ``None`` without either (synthetic inputs then)."""
    if dataset is None and source.dataset is None:
        return None, dataset, data_dir
    return runs.dataset_for(
        source.model.output_shape[-1], str(source.path), dataset=dataset, data_dir=data_dir,
        recorded=(source.dataset, source.data_dir), missing="")


def _binary_dense_report(dense: list, report: dict) -> dict:
    """Binary dense layers, exported as the equal 1x1 binary convolutions (LCE
    bitpacks those): how many became ``LceBconv2d``."""
    missing = set(report["binary_convolutions"]["not_bitpacked"])
    return {"keras": len(dense), "as_lce_bconv2d": len([n for n in dense if n not in missing]),
            "layers": dense}


def _parity_inputs(data: Optional[datasets.Dataset], image_shape,
                   count: int) -> tuple[np.ndarray, str]:
    """``count`` parity inputs and how the report names them: the first test
    images of ``data``, or synthetic inputs without a dataset."""
    if data is not None:
        return first_test_images(data, image_shape, count), f"{data.name} test images"
    return synthetic_inputs(image_shape, count), SYNTHETIC


def _write_export(output: Path, buf: bytes, report: dict, overwrite: bool) -> None:
    """Both files complete before either is renamed into place: the flatbuffer
    first, then its report; without ``overwrite`` neither replaces a file."""
    with atomic.atomic_path(report_path(output), overwrite) as tmp_report:
        tmp_report.write_text(json.dumps(report, indent=2) + "\n")
        with checksums.recorded_path(output, overwrite) as tmp_flatbuffer:
            tmp_flatbuffer.write_bytes(buf)


def compare_with_keras(path: Path, source: Optional[Path] = None, *, dataset: Optional[str] = None,
                       data_dir: Optional[str] = None, batch_size: int = 256,
                       limit: Optional[int] = None, num_threads: int = EVALUATION_THREADS) -> dict:
    """The flatbuffer at ``path`` and the Keras model it came from (``source``:
    a run or model file; default the one its export report names), image by
    image on the test split: both top-1s and McNemar's test of their difference
    (:func:`.parity.paired_top1`)."""
    path = Path(path)
    buf = fb.read_flatbuffer(path)
    recorded = runs.read_json(report_path(path), default={})
    if source is None and "source" not in recorded:
        raise UserError(f"{path} has no export report naming its Keras model: pass the run "
                         "or model file it was exported from.")
    source = runs.load_source(Path(source or recorded["source"]))
    data, _, _ = runs.dataset_for(
        source.model.output_shape[-1], str(source.path), dataset=dataset or None,
        data_dir=data_dir or source.data_dir or recorded.get("data_dir"),
        recorded=(source.dataset or recorded.get("dataset"), None),
        missing=f"Comparing {path} with {source.path} needs --dataset.")
    batches = datasets.pipeline(data, "test", image_shape=fb.input_shape(buf), batch_size=batch_size,
                                limit=limit)
    runner = interpreter(buf, num_threads)
    keras, lce, labels = [], [], []
    examples = min(limit, data.examples("test")) if limit else data.examples("test")
    with Progress(f"Comparing {path.name} with {source.name}", examples) as progress:
        for images, truth in batches:
            keras.append(source.model.predict_on_batch(images))
            lce.append(predict(runner, images.numpy()))
            labels.append(truth.numpy())
            progress.update(len(labels[-1]))
    return {"flatbuffer": str(path), "keras_model": str(source.path), "dataset": data.name,
            **paired_top1(np.concatenate(keras), np.concatenate(lce), np.concatenate(labels))}
