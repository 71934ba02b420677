"""Where a model gets trained: ``train(...)`` runs one training run end to end.

dataset -> model (from the registry, in the precision ``training.hardware``
picks) -> recipe -> ``model.fit`` (with XLA where ``training.xla`` measures it
faster) -> run directory (see ``training.runs``). After every epoch the model, the
optimiser and the epoch counter are checkpointed, so a run killed at any
moment (even ``kill -9``) resumes from its last completed epoch with
``resume=True``; the learning-rate schedule continues from the restored step.
"""

import dataclasses
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Optional, Tuple

import tensorflow as tf

from bnnzoo import atomic, datasets, zoo
from bnnzoo.quantizers.siman import SiManClipSchedule
from bnnzoo.zoo.binary_layers import undecayed_weights
from bnnzoo.zoo.variants import variant

from . import distribution, hardware, recipes, runs, xla
from .distill import TeacherStudent
from .history import HistoryRecorder
from .initialise import initialise_from

DEFAULT_LARGE_INPUT = 224


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run; stored as the run's ``config.json``.

    ``None`` fields are filled in from the model's recipe and the dataset.
    """

    model: str
    dataset: str = "fashion_mnist"
    data_dir: Optional[str] = None
    input_size: Optional[int] = None
    epochs: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    weight_decay: Optional[float] = None
    label_smoothing: Optional[float] = None
    validation_steps: Optional[int] = None
    xla: str = "auto"  # training.xla: auto (measured here) | on | off; resolved to on/off
    precision: str = "auto"  # training.hardware: auto | float32 | bfloat16 | float16; resolved
    seed: int = 0
    init_from: Optional[str] = None  # a trained run or model file of the same structure
    variant: str = "binary"  # zoo.variants: which quantizers the binary layers use
    batchnorm_only: bool = False  # train only BatchNorm (recalibration)
    two_step: bool = False  # Bi-Real's two steps in one run (see training.stages)
    recalibrate_bn: bool = False  # with two_step: a third, BatchNorm-only epoch on sign(W)
    width: Optional[int] = None  # the model's first-stage width ("filters"), where it has one
    stage: Optional[int] = None  # train this stage of a staged recipe alone (training.stages)
    teacher: Optional[str] = None  # a trained run or model file teaching this run (distill)
    attention_weight: float = 0.0  # with a teacher: training.distill's loss weights
    output_weight: float = 0.0
    temperature: float = 1.0
    strategy: str = "default"  # training.distribution: default | mirrored | multi-worker
    # Filled in by resolve():
    recipe: Optional[dict] = None
    input_shape: Optional[Tuple[int, int, int]] = None
    num_classes: Optional[int] = None
    train_examples: Optional[int] = None
    test_examples: Optional[int] = None
    dataset_source: Optional[str] = None
    class_names: Optional[list] = None


def config_from_dict(stored: dict) -> TrainConfig:
    """A run's ``config.json`` back as a ``TrainConfig`` (extra keys such as
    ``versions`` are dropped)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    stored = dict(stored)
    if "jit_compile" in stored:  # runs from before --xla / --precision
        stored.setdefault("xla", "on" if stored["jit_compile"] else "off")
        stored.setdefault("precision", "float32")
    return TrainConfig(**{k: v for k, v in stored.items() if k in fields})


OVERRIDABLE = ("dataset", "data_dir", "input_size", "epochs", "steps_per_epoch",
               "batch_size", "learning_rate", "weight_decay", "label_smoothing",
               "validation_steps", "xla", "precision", "seed", "init_from", "variant",
               "batchnorm_only", "two_step", "recalibrate_bn", "width", "stage", "teacher")


def resolve(config: TrainConfig, data: datasets.Dataset) -> TrainConfig:
    """Fill the ``None`` fields from the recipe and the dataset."""
    recipe = recipes.get_recipe(zoo.model_entry(config.model).recipe)
    c = dataclasses.replace(config)
    c.recipe = dataclasses.asdict(recipe)
    if c.precision == "auto" and c.strategy == "multi-worker":
        c.precision = "float32"  # each worker would detect its own hardware: one precision for all
    c.precision = hardware.resolve_precision(c.precision)
    if c.xla not in xla.CHOICES:
        raise ValueError(f"Unknown --xla {c.xla!r}. Choices: {', '.join(xla.CHOICES)}.")
    if c.epochs is None:
        c.epochs = recipe.epochs
    if c.batch_size is None:
        c.batch_size = recipe.batch_size
    if c.learning_rate is None:
        c.learning_rate = recipe.scaled_learning_rate(c.batch_size)
    if c.weight_decay is None:
        c.weight_decay = recipe.weight_decay
    if c.label_smoothing is None:
        c.label_smoothing = recipe.label_smoothing
    height, _, channels = data.image_shape
    if c.input_size is None:
        c.input_size = height or DEFAULT_LARGE_INPUT
    c.input_shape = (c.input_size, c.input_size, channels)
    c.num_classes = data.num_classes
    c.train_examples = data.examples("train")
    c.test_examples = data.examples("test")
    c.dataset_source = data.source
    c.class_names = data.class_names
    for name in ("epochs", "steps_per_epoch", "batch_size", "input_size", "validation_steps",
                 "width"):
        if getattr(c, name) is not None and getattr(c, name) < 1:
            raise ValueError(f"{name.replace('_', '-')} must be at least 1.")
    if c.steps_per_epoch is None:
        c.steps_per_epoch = max(1, c.train_examples // c.batch_size)
    if c.learning_rate <= 0:
        raise ValueError("learning-rate must be positive.")
    from . import stages  # it imports this module

    stages.kind(c)  # refuses --two-step for a progressive recipe
    if c.recalibrate_bn and not c.two_step:  # it drops Bi-Real's weight scale
        raise ValueError("--recalibrate-bn is the last part of --two-step; pass both.")
    if c.stage is not None:
        c = stages.single_stage(c)
    elif c.teacher:
        raise ValueError("--teacher teaches one stage: pass --stage N with it.")
    return c


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


def build_model(config: TrainConfig) -> tf.keras.Model:
    """``config``'s model, its layers computing in ``config.precision``."""
    width = {} if config.width is None else {"filters": config.width}
    with hardware.precision_scope(config.precision):
        model = zoo.get_model(config.model, input_shape=tuple(config.input_shape),
                              num_classes=config.num_classes, weights=None, **width)
        model = variant(model, config.variant)
    if config.batchnorm_only:
        for layer in model.layers:
            layer.trainable = isinstance(layer, tf.keras.layers.BatchNormalization)
    return model


def float32_copy(model: tf.keras.Model) -> tf.keras.Model:
    """``model`` with float32 layers (its weights and layer configurations,
    constraints' state included): what a mixed-precision run saves."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def float32(config):  # quantizers are layers too: their policies sit inside
        if isinstance(config, dict):
            if config.get("class_name") == "Policy":
                return "float32"
            return {key: float32(value) for key, value in config.items()}
        return [float32(value) for value in config] if isinstance(config, list) else config

    def clone(layer):
        return layer.__class__.from_config(float32(layer.get_config()))

    copy = tf.keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    copy._name = model.name
    return copy


def use_xla(config: TrainConfig) -> Tuple[bool, str]:
    """Whether ``config``'s training step compiles with XLA, and why (training.xla)."""
    if config.xla != "auto":
        return xla.choose(config.xla, "", None, config.batch_size)
    if config.strategy != "default":
        return False, "auto: distributed runs are not probed"

    def compiled(jit: bool) -> tf.keras.Model:
        probe = dataclasses.replace(config, xla="on" if jit else "off")
        model = build_model(probe)
        compile_model(model, probe)
        return model

    key = xla.probe_key(config.model, config.width, config.input_shape, config.batch_size,
                        hardware.resolve_precision(config.precision))
    return xla.choose(config.xla, key, compiled, config.batch_size)


def compile_model(model: tf.keras.Model, config: TrainConfig) -> None:
    """The recipe's optimiser, loss (with L2 decay in "l2" mode) and metrics."""
    recipe = recipes.Recipe(**config.recipe)
    no_decay = undecayed_weights(model)
    decoupled = config.weight_decay
    if recipe.weight_decay_mode != "decoupled":
        if config.weight_decay > 0:
            recipes.add_l2_penalty(model, recipes.decayed_weights(
                model, recipe.weight_decay_mode, no_decay), config.weight_decay)
        decoupled = 0.0
    optimizer = recipes.make_optimizer(
        recipe,
        learning_rate=config.learning_rate,
        total_steps=config.epochs * config.steps_per_epoch,
        steps_per_epoch=config.steps_per_epoch,
        weight_decay=decoupled,
        no_decay=no_decay,
    )
    if hardware.resolve_precision(config.precision) == "float16":
        optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=recipes.make_loss(config.label_smoothing),
        metrics=recipes.make_metrics(),
        jit_compile=use_xla(config)[0],
    )
    optimizer.build(model.trainable_variables)


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Save model + optimiser + the number of completed epochs after each epoch."""

    def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable):
        super().__init__()
        self.manager = manager
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)


def restore_checkpoint(checkpoint: tf.train.Checkpoint, run_dir: Path):
    """Restore the run's latest checkpoint into ``checkpoint``: its status, or
    ``None`` if the run has none yet. A damaged checkpoint, or a checkpoint
    record (``checkpoints/checkpoint``) that names none, is a ``RunError``:
    resuming from scratch would overwrite the completed epochs."""
    folder = Path(run_dir) / runs.CHECKPOINTS
    latest = tf.train.latest_checkpoint(folder)
    if latest is None:
        if (folder / "checkpoint").exists():
            raise runs.RunError(
                f"{folder / 'checkpoint'} is damaged or names a checkpoint that is missing; "
                f"{folder} is left as it is (resuming would start again from epoch 1).")
        return None
    try:
        return checkpoint.restore(latest)
    except (tf.errors.OpError, IndexError, ValueError) as err:
        message = (getattr(err, "message", None) or str(err) or type(err).__name__).splitlines()
        raise runs.RunError(f"Cannot read the checkpoint {latest} (damaged or truncated): "
                            f"{(message or [''])[-1][:300]}") from None


def trained_part(model: tf.keras.Model) -> tf.keras.Model:
    """What a run trains and keeps: the student of a ``TeacherStudent``, else the model."""
    return model.student if isinstance(model, TeacherStudent) else model


def checkpoint_for(model: tf.keras.Model, run_dir: Path):
    """Checkpoint of the trained part (a teacher is fixed: it is read again from its file)."""
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
    checkpoint = tf.train.Checkpoint(model=trained_part(model), optimizer=model.optimizer,
                                     epoch=epoch)
    manager = tf.train.CheckpointManager(checkpoint, Path(run_dir) / runs.CHECKPOINTS, max_to_keep=2)
    return checkpoint, manager, epoch


def default_run_dir(config: TrainConfig) -> Path:
    dataset = Path(config.dataset).name or "data"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return runs.runs_root() / f"{config.model}-{dataset}-{stamp}"


def prepare_run(config: TrainConfig, output: Optional[Path], resume: bool) -> Tuple[Path, TrainConfig]:
    """The run directory and its configuration, new or (``resume``) stored.

    Never overwrites: a new run refuses an existing non-empty directory; a
    resumed run refuses options that differ from its stored configuration.
    """
    if resume:
        run_dir = runs.resolve_run(output)
        try:
            stored = dataclasses.asdict(config_from_dict(runs.read_config(run_dir)))
        except (TypeError, ValueError) as err:
            raise runs.RunError(f"{run_dir / runs.CONFIG} is not a run configuration: {err}") from None
        defaults = TrainConfig(model=config.model)
        # A stage's stored options are the stage's (training.stages.single_stage
        # scales the last stage's rate, clears two_step): not the ones typed.
        staged = ("learning_rate", "two_step", "recalibrate_bn") if stored.get("stage") is not None else ()
        clashes = [k for k in OVERRIDABLE if k not in staged
                   and getattr(config, k) != getattr(defaults, k) and getattr(config, k) != stored.get(k)]
        if stored["model"] != config.model:
            clashes.insert(0, "model")
        if clashes:
            raise runs.RunError(
                f"--resume continues {run_dir} as configured; these options differ "
                f"from its config.json: {', '.join(clashes)}."
            )
        return run_dir, config_from_dict(stored)
    run_dir = Path(output) if output else default_run_dir(config)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise runs.RunError(
            f"{run_dir} already exists and is not empty: pass --resume to continue "
            "that run, or choose another --output."
        )
    return run_dir, config


def train(config: TrainConfig, output: Optional[Path] = None, resume: bool = False,
          verbose: Optional[int] = None) -> Path:
    """Train ``config.model``; returns the run directory.

    With ``config.strategy`` other than "default", everything is built in
    that ``tf.distribute`` strategy's scope (``training.distribution``); a
    resumed run may use another strategy than the one it started with.
    """
    strategy = distribution.make_strategy(config.strategy)
    if not distribution.is_chief(strategy):
        return _train_as_worker(config, output, resume, verbose, strategy)
    run_dir, stored = prepare_run(config, output, resume)
    config = dataclasses.replace(stored, strategy=config.strategy)
    data = datasets.load(config.dataset, config.data_dir)
    if not resume:
        config = resolve(config, data)
        config = choose_speed(config)
    from . import stages  # it calls back into this module

    with strategy.scope():
        if config.stage is None and stages.kind(config):
            return stages.train_stages(config, data, run_dir, resume, verbose)
        return train_run(config, data, run_dir, resume, verbose)


def choose_speed(config: TrainConfig) -> TrainConfig:
    """``config`` with XLA decided (``training.xla``); says the precision and XLA once."""
    jit, why = use_xla(config)
    tf.keras.backend.clear_session()  # the probe's models: names and memory
    machine = ", ".join(hardware.native_bf16()) or "no native bf16"
    print(f"Precision {config.precision} ({machine}); XLA {'on' if jit else 'off'} ({why}).")
    return dataclasses.replace(config, xla="on" if jit else "off")


def _train_as_worker(config: TrainConfig, output: Optional[Path], resume: bool,
                     verbose: Optional[int], strategy) -> Path:
    """A multi-worker run's workers 1, 2, ...: the chief's training step for
    step, written to a temporary folder (a copy of the chief's run to resume)."""
    chief_dir = runs.resolve_run(output) if resume else Path(output or default_run_dir(config))
    folder = distribution.worker_folder(chief_dir)
    print(f"Worker {distribution.cluster_spec()['task']['index']}: training beside the chief, "
          f"writing to {folder} (removed at the end).")
    try:
        if resume:
            shutil.copytree(chief_dir, folder, dirs_exist_ok=True)
        run_dir, stored = prepare_run(config, folder, resume)
        config = dataclasses.replace(stored, strategy=config.strategy)
        data = datasets.load(config.dataset, config.data_dir)
        if not resume:
            config = resolve(config, data)
            config = choose_speed(config)
        from . import stages

        with strategy.scope():
            if config.stage is None and stages.kind(config):
                stages.train_stages(config, data, run_dir, resume, verbose, point_latest=False)
            else:
                train_run(config, data, run_dir, resume, verbose, point_latest=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return chief_dir


def prepare_model(config: TrainConfig, run_dir: Path) -> tf.keras.Model:
    """``config``'s model, built and compiled; initialised from ``config.init_from``
    unless ``run_dir`` already has a checkpoint; with a ``config.teacher``, the
    student inside a ``distill.TeacherStudent``. Writes nothing, so a structure
    mismatch (``InitialisationError``) leaves no trace."""
    tf.keras.utils.set_random_seed(config.seed)
    student = model = build_model(config)
    if config.teacher:
        model = TeacherStudent(student, load_source(Path(config.teacher)).model,
                               attention_weight=config.attention_weight,
                               output_weight=config.output_weight,
                               temperature=config.temperature)
    compile_model(model, config)
    if config.init_from and not tf.train.latest_checkpoint(run_dir / runs.CHECKPOINTS):
        source = load_source(Path(config.init_from))
        copied = initialise_from(student, source.model)
        print(f"Initialised {copied} layers from {config.init_from}.")
        twin = zoo.model_entry(config.model).twin
        if source.name not in (config.model, twin):
            print(f"Note: {source.name} is not {config.model}'s real-valued twin "
                  f"({twin or 'none registered'}); the structures match.")
    return model


def train_run(config: TrainConfig, data: datasets.Dataset, run_dir: Path, resume: bool,
              verbose: Optional[int] = None, point_latest: bool = True,
              model: Optional[tf.keras.Model] = None) -> Path:
    """Train one run directory with a resolved ``config`` (and its ``prepare_model``)."""
    if model is None:
        model = prepare_model(config, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        runs.write_config(run_dir, {**dataclasses.asdict(config), "versions": package_versions()})
    if point_latest:
        runs.set_latest(run_dir)

    checkpoint, manager, epoch_var = checkpoint_for(model, run_dir)
    initial_epoch = 0
    status = restore_checkpoint(checkpoint, run_dir)
    if status is not None:
        status.assert_existing_objects_matched()
        initial_epoch = int(epoch_var.numpy())
    if initial_epoch >= config.epochs and (run_dir / runs.MODEL).is_file():
        print(f"{run_dir} has already finished its {config.epochs} epochs.")
        return run_dir

    train_ds = datasets.pipeline(data, "train", image_shape=config.input_shape,
                                 batch_size=config.batch_size, training=True, seed=config.seed)
    val_ds = datasets.pipeline(data, "test", image_shape=config.input_shape,
                               batch_size=config.batch_size)
    if config.validation_steps:
        val_ds = val_ds.take(config.validation_steps)
    # History first, checkpoint second: killed between the two, the resumed run
    # repeats that epoch and replaces its history row, so no row is ever lost.
    callbacks = [
        HistoryRecorder(run_dir, initial_epoch),
        EpochCheckpoint(manager, epoch_var),
        tf.keras.callbacks.TensorBoard(log_dir=str(run_dir / runs.LOGS), profile_batch=0),
    ]
    if SiManClipSchedule.applies_to(model):  # the latent-weight clip's per-epoch p
        callbacks.insert(0, SiManClipSchedule(config.epochs))
    if initial_epoch < config.epochs:
        if initial_epoch:
            print(f"Resuming {run_dir} at epoch {initial_epoch + 1}/{config.epochs}.")
        model.fit(
            train_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=config.steps_per_epoch,
            validation_data=val_ds,
            callbacks=callbacks,
            verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
        )
    with atomic.atomic_path(run_dir / runs.MODEL) as tmp:
        float32_copy(trained_part(model)).save(tmp, include_optimizer=False, save_format="h5")
    return run_dir


def load_model_file(path: Path) -> tf.keras.Model:
    """A saved Keras model (h5 or SavedModel); the project's quantizers are registered."""
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001  (h5py, protobuf, ... all mean "unreadable")
        raise runs.RunError(f"Cannot load a Keras model from {path}: {err}") from None


def load_trained_model(run_dir: Path) -> tf.keras.Model:
    """The run's trained model: ``model.h5``, or the last checkpoint of an
    unfinished run."""
    run_dir = Path(run_dir)
    if (run_dir / runs.MODEL).is_file():
        return load_model_file(run_dir / runs.MODEL)
    config = config_from_dict(runs.read_config(run_dir))
    model = build_model(dataclasses.replace(config, precision="float32"))
    status = restore_checkpoint(tf.train.Checkpoint(model=model), run_dir)
    if status is None:
        raise runs.RunError(f"{run_dir} has neither {runs.MODEL} nor a checkpoint yet.")
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
        run_dir = path.parent if (path.parent / runs.CONFIG).is_file() else None
        model = load_model_file(path)
    else:
        run_dir = runs.resolve_run(target)
        path = run_dir
        model = load_trained_model(run_dir)
    name, dataset, data_dir = model.name, None, None
    if run_dir is not None:
        config = runs.read_config(run_dir)
        name = config.get("model", name)
        dataset, data_dir = config.get("dataset"), config.get("data_dir")
    return ModelSource(model, path, name, run_dir, dataset, data_dir)
