"""Where a model gets trained: ``train(...)`` runs one training run end to end.

dataset -> model (from the registry, in the precision ``training.hardware``
picks) -> recipe -> ``model.fit`` (with XLA where ``training.xla`` measures it
faster) -> run directory (see ``bnnzoo.runs``). After every epoch the model, the
optimiser and the epoch counter are checkpointed, so a run killed at any
moment (even ``kill -9``) resumes from its last completed epoch with
``resume=True``; the learning-rate schedule continues from the restored step.
"""

import dataclasses
import shutil
import sys
import time
from pathlib import Path
from typing import Optional, Tuple

import tensorflow as tf

from bnnzoo import atomic, datasets, runs, zoo
from bnnzoo.quantizers.siman import SiManClipSchedule
from bnnzoo.zoo.binary_layers import undecayed_weights

from . import distribution, hardware, recipes, xla
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


def build_model(config: TrainConfig) -> tf.keras.Model:
    """``config``'s model, its layers computing in ``config.precision``."""
    with hardware.precision_scope(config.precision):
        return runs.build_network(dataclasses.asdict(config))


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
        model = TeacherStudent(student, runs.load_source(Path(config.teacher)).model,
                               attention_weight=config.attention_weight,
                               output_weight=config.output_weight,
                               temperature=config.temperature)
    compile_model(model, config)
    if config.init_from and not tf.train.latest_checkpoint(run_dir / runs.CHECKPOINTS):
        source = runs.load_source(Path(config.init_from))
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
        runs.write_config(run_dir, {**dataclasses.asdict(config), "versions": runs.package_versions()})
    if point_latest:
        runs.set_latest(run_dir)

    checkpoint, manager, epoch_var = checkpoint_for(model, run_dir)
    initial_epoch = 0
    status = runs.restore_checkpoint(checkpoint, run_dir)
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
        hardware.float32_copy(trained_part(model)).save(tmp, include_optimizer=False, save_format="h5")
    return run_dir
