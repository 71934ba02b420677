"""Training runs on disk: the run directory, its pointers, and the trained
model read back from it. Training writes runs; export and evaluation read them.

A run directory holds everything a later stage reads:

    config.json     the exact configuration (and package versions)
    model.h5        the trained Keras model (written when training ends)
    model.h5.sha256 its SHA-256, checked whenever it is read (``bnnzoo.checksums``)
    checkpoints/    model + optimiser + epoch after every completed epoch
    history.csv, history.json, steps.json, curves.png, logs/ (TensorBoard)
    int8/           optional: the int8 stage (``cli.py quantize``), a run of its own

``runs/latest`` (under ``$BNNZOO_RUNS``, default ``./runs``) names the run
that was started last, and ``runs/latest-export`` the last exported flatbuffer,
so later commands can default to them. Only runs and exports inside that
folder are pointed to: one written elsewhere (``--output``) writes nothing
outside its own directory.

``load_source`` reads a trained model from a run directory (``model.h5``, or
the last checkpoint of an unfinished run) or from a Keras model file, with the
dataset its run was trained on; ``dataset_for`` picks the dataset a model is
tested on. Nothing here imports ``bnnzoo.training``.
"""

import contextlib
import dataclasses
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

import tensorflow as tf

from bnnzoo import atomic, datasets, model_files, zoo
from bnnzoo.errors import UserError
from bnnzoo.zoo.int8_edges import with_int8_edges
from bnnzoo.zoo.variants import variant

CONFIG = "config.json"
MODEL = "model.h5"
CHECKPOINTS = "checkpoints"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
STEPS_JSON = "steps.json"
CURVES = "curves.png"
LOGS = "logs"
INT8_STAGE = "int8"  # the run's int8 stage, a run directory of its own (training.int8_stage)


class RunError(UserError):
    """A run directory that is missing, incomplete or would be overwritten."""


def runs_root() -> Path:
    """``$BNNZOO_RUNS`` (default ``./runs``), absolute: every path printed is."""
    return Path(os.environ.get("BNNZOO_RUNS", "runs")).resolve()


def latest_pointer() -> Path:
    return runs_root() / "latest"


def _under_runs_root(path: Path) -> bool:
    """Whether ``path`` lies in the runs folder: only then are pointers written,
    so a run or export with its own ``--output`` writes nothing outside it."""
    root = runs_root().resolve()
    return Path(path).resolve().is_relative_to(root) or Path(path).absolute().is_relative_to(root)


def _set_pointer(pointer: Path, target: Path, what: str) -> None:
    """``pointer`` names ``target`` if it lies in the runs folder; else a note."""
    if _under_runs_root(target):
        atomic.write_text(pointer, str(Path(target).resolve()) + "\n")
    else:
        print(f"Note: {pointer} still names the previous {what} ({target} is outside "
              f"{runs_root()}); name {target} in later commands.", file=sys.stderr)


def set_latest(run_dir: Path) -> None:
    _set_pointer(latest_pointer(), run_dir, "run")


def latest_run() -> Path:
    pointer = latest_pointer()
    if not pointer.is_file():
        raise RunError(
            f"No training run yet ({pointer} does not exist): run "
            "`python cli.py train MODEL` first, or name a run directory."
        )
    run = Path(pointer.read_text().strip())
    if not (run / CONFIG).is_file():
        raise RunError(f"{pointer} points to {run}, which is not a training run.")
    return run


def resolve_run(run: Optional[os.PathLike]) -> Path:
    """The given run directory (checked), or the latest run."""
    if run is None:
        return latest_run()
    run = Path(run)
    if not (run / CONFIG).is_file():
        raise RunError(f"{run} is not a training run directory (no {CONFIG}).")
    return run


def read_json(path: Path, default=None):
    """A JSON file the project wrote: ``default`` where it is absent (if
    given), a :class:`RunError` naming it where it cannot be read."""
    path = Path(path)
    if default is not None and not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunError(f"Cannot read {path}: {err}") from None


def read_config(run_dir: Path) -> dict:
    return read_json(Path(run_dir) / CONFIG)


def write_config(run_dir: Path, config: dict) -> None:
    atomic.write_json(Path(run_dir) / CONFIG, config)


def latest_export_pointer() -> Path:
    return runs_root() / "latest-export"


def set_latest_export(flatbuffer: Path) -> None:
    _set_pointer(latest_export_pointer(), flatbuffer, "export")


def latest_export() -> Path:
    """The flatbuffer written by the last successful ``export``."""
    pointer = latest_export_pointer()
    if not pointer.is_file():
        raise RunError(
            f"No export yet ({pointer} does not exist): run "
            "`python cli.py export --target arm64` first, or name a .tflite file.")
    path = Path(pointer.read_text().strip())
    if not path.is_file():
        raise RunError(f"{pointer} points to {path}, which no longer exists.")
    return path


def package_versions() -> dict:
    """Installed versions of the stack, recorded in every run and export report."""
    names = ("tensorflow", "tf-keras", "larq", "larq-zoo", "larq-compute-engine",
             "tensorflow-datasets", "bnnzoo")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def build_network(config: dict) -> tf.keras.Model:
    """The untrained network a run's configuration describes (model, input
    shape, classes, width, variant, BatchNorm-only, int8 edges), in the
    current Keras precision policy."""
    missing = [key for key in ("model", "input_shape", "num_classes") if config.get(key) is None]
    if missing:
        raise RunError(f"The run configuration lacks {', '.join(missing)}.")
    width = {} if config.get("width") is None else {"filters": config["width"]}
    model = zoo.get_model(config["model"], input_shape=tuple(config["input_shape"]),
                          num_classes=config["num_classes"], weights=None, **width)
    model = variant(model, config.get("variant") or "binary")
    if config.get("int8_edges"):
        model = with_int8_edges(model)
    if config.get("batchnorm_only"):
        for layer in model.layers:
            layer.trainable = isinstance(layer, tf.keras.layers.BatchNormalization)
    return model


def restore_checkpoint(checkpoint: tf.train.Checkpoint, run_dir: Path):
    """Restore the run's latest checkpoint into ``checkpoint``: its status, or
    ``None`` if the run has none yet. A damaged checkpoint, or a checkpoint
    record (``checkpoints/checkpoint``) that names none, is a ``RunError``:
    resuming from scratch would overwrite the completed epochs."""
    folder = Path(run_dir) / CHECKPOINTS
    latest = tf.train.latest_checkpoint(folder)
    if latest is None:
        if (folder / "checkpoint").exists():
            raise RunError(
                f"{folder / 'checkpoint'} is damaged or names a checkpoint that is missing; "
                f"{folder} is left as it is (resuming would start again from epoch 1).")
        return None
    try:
        return checkpoint.restore(latest)
    except (tf.errors.OpError, IndexError, ValueError) as err:
        message = (getattr(err, "message", None) or str(err) or type(err).__name__).splitlines()
        raise RunError(f"Cannot read the checkpoint {latest} (damaged or truncated): "
                       f"{(message or [''])[-1][:300]}") from None


@contextlib.contextmanager
def float32_layers():
    """Layers built inside are float32 (a mixed-precision run's checkpoint
    restores into them); the global policy is restored afterwards."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def load_model_file(path: Path) -> tf.keras.Model:
    """A saved Keras model (h5 or SavedModel) of any larq model: the project's
    quantizers and larq-zoo's functions are registered (``bnnzoo.model_files``)."""
    try:
        return model_files.load_model_file(path)
    except model_files.ModelFileError as err:
        raise RunError(str(err)) from None


def load_trained_model(run_dir: Path) -> tf.keras.Model:
    """The run's trained model: ``model.h5``, or the last checkpoint of an
    unfinished run (restored into a float32 build of its configuration)."""
    run_dir = Path(run_dir)
    if (run_dir / MODEL).is_file():
        return load_model_file(run_dir / MODEL)
    with float32_layers():
        model = build_network(read_config(run_dir))
    status = restore_checkpoint(tf.train.Checkpoint(model=model), run_dir)
    if status is None:
        raise RunError(f"{run_dir} has neither {MODEL} nor a checkpoint yet.")
    status.expect_partial()
    return model


@dataclasses.dataclass
class ModelSource:
    """A trained Keras model and where it came from (its run's dataset, if known)."""

    model: tf.keras.Model
    path: Path
    name: str  # the registry name of a run's model, else the Keras model's name
    run_dir: Optional[Path] = None
    dataset: Optional[str] = None
    data_dir: Optional[str] = None


def load_source(target: Optional[Path] = None) -> ModelSource:
    """A run directory (default: the latest run) or a Keras model file.

    A model file inside a run directory (``RUN/model.h5``) knows its run's dataset.
    """
    if target is not None and (Path(target).is_file()
                               or (Path(target) / "saved_model.pb").is_file()):
        path = Path(target)
        run_dir = path.parent if (path.parent / CONFIG).is_file() else None
        model = load_model_file(path)
    else:
        run_dir = resolve_run(target)
        path = run_dir
        model = load_trained_model(run_dir)
    name, dataset, data_dir = model.name, None, None
    if run_dir is not None:
        config = read_config(run_dir)
        name = config.get("model", name)
        dataset, data_dir = config.get("dataset"), config.get("data_dir")
    return ModelSource(model, path, name, run_dir, dataset, data_dir)


def dataset_for(num_classes: int, predictor: str, *, dataset: Optional[str] = None,
                data_dir: Optional[str] = None,
                recorded: tuple[Optional[str], Optional[str]] = (None, None),
                missing: str) -> tuple[datasets.Dataset, str, Optional[str]]:
    """The dataset a model is tested on: ``dataset`` if given, else the
    ``recorded`` (dataset, data_dir) of the model (its run's ``config.json``, a
    flatbuffer's export report); a given ``data_dir`` overrides the recorded one.

    Returns the loaded dataset and the (dataset, data_dir) it was loaded by.
    Raises ``UserError(missing)`` when there is no dataset, and ``UserError``
    when its class count is not the model's (``predictor`` names the model).
    """
    if dataset is None:
        dataset, data_dir = recorded[0], data_dir or recorded[1]
    if dataset is None:
        raise UserError(missing)
    data = datasets.load(dataset, data_dir)
    if recorded[0] is not None and not _same_dataset(dataset, recorded[0]):
        print(f"Warning: {predictor} was trained on {recorded[0]}; testing it on {dataset} "
              "instead, its images resized and converted to the model's input.", file=sys.stderr)
    if num_classes != data.num_classes:
        raise UserError(f"{predictor} predicts {num_classes} classes but {data.name} has "
                         f"{data.num_classes}.")
    return data, dataset, data_dir


def _same_dataset(given: str, recorded: str) -> bool:
    """The same dataset by name: ``fashion_mnist`` is also a folder named
    ``fashion-mnist``, however its path is written."""
    def name(dataset: str) -> str:
        path = Path(dataset).expanduser()
        return (path.resolve().name if path.is_dir() else dataset).lower().replace("-", "_")

    return name(given) == name(recorded)
