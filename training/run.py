"""One training run: a resolved ``TrainConfig`` trained into one run directory.

model (from the registry, in the precision ``training.hardware`` picks) ->
recipe (optimiser, schedule, loss, weight decay) -> ``model.fit`` (with XLA
where ``training.xla`` measures it faster) -> the run directory
(``bnnzoo.runs``). After every epoch the model, the optimiser and the epoch
counter are checkpointed, so a run killed at any moment (even ``kill -9``)
continues from its last completed epoch when trained again; the
learning-rate schedule continues from the restored step. What the model's
quantizers or constraints ask to change each epoch (``epoch_schedules``:
SiMaN's clip) runs as a callback.
"""

import dataclasses
import sys
from pathlib import Path
from typing import Optional

import tensorflow as tf

from bnnzoo import checksums, datasets, runs, zoo
from bnnzoo.errors import UserError
from bnnzoo.progress import FitProgress
from bnnzoo.quantizers.int8 import int8_ranges
from bnnzoo.zoo.binary_layers import undecayed_weights

from bnnzoo.zoo.recipes import Recipe

from . import hardware, optimisation, xla
from .config import DEFAULT_LARGE_INPUT, TrainConfig
from .distill import TeacherStudent
from .history import HistoryRecorder
from .calibration import calibrate
from .initialise import initialise_from
from .switch import begin_binary_stage


SWITCH_BATCHES = 20  # training batches that re-estimate BatchNorm at a real -> binary switch


def write_run_config(run_dir: Path, config: TrainConfig) -> None:
    """``config.json``: the resolved configuration and the stack's versions."""
    runs.write_config(run_dir, {**dataclasses.asdict(config), "versions": runs.package_versions()})


def epoch_schedules(model: tf.keras.Model, epochs: int) -> list[tf.keras.callbacks.Callback]:
    """The per-epoch schedules ``model``'s quantizers and constraints ask for:
    each kind with an ``epoch_schedule(epochs)`` class method (SiMaN's clip,
    whose p falls to 0) gives one callback."""
    kinds = {type(part) for layer in model.layers
             for part in (getattr(layer, name, None) for name in
                          ("input_quantizer", "kernel_quantizer", "kernel_constraint"))
             if hasattr(part, "epoch_schedule")}
    return [kind.epoch_schedule(epochs) for kind in sorted(kinds, key=lambda kind: kind.__name__)]


def build_model(config: TrainConfig) -> tf.keras.Model:
    """``config``'s model, its layers computing in ``config.precision``; an
    input too small for its strides and pooling is a ``ValueError`` naming
    the least input side (``zoo.input_side``)."""
    with hardware.precision_scope(config.precision):
        try:
            model = runs.build_network(dataclasses.asdict(config))
        except UserError:
            raise  # already says what the user got wrong
        except ValueError:
            # A "valid" pooling with nothing left to pool fails to build: the
            # least side is read from the same network built at the largest
            # small-image side, which has the same layers (or, for a network
            # that does not build there either, such as larq-zoo's XNOR-Net,
            # at the ImageNet side, where its stem is the same too).
            side = config.input_shape[0]
            for reference_side in (zoo.input_side.SEARCH_LIMIT, DEFAULT_LARGE_INPUT):
                reference = dict(dataclasses.asdict(config),
                                 input_shape=(reference_side,) * 2 + (config.input_shape[2],))
                try:
                    least = zoo.smallest_input_side(runs.build_network(reference))
                except ValueError:
                    continue
                if side < least:
                    raise zoo.input_side.too_small(config.model, side, least) from None
                break
            raise
    zoo.check_input_side(model, config.model)
    return model


def use_xla(config: TrainConfig) -> tuple[bool, str]:
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
    recipe = Recipe(**config.recipe)
    no_decay = undecayed_weights(model)
    decoupled = config.weight_decay
    if recipe.weight_decay_mode != "decoupled":
        if config.weight_decay > 0:
            optimisation.add_l2_penalty(model, optimisation.decayed_weights(
                model, recipe.weight_decay_mode, no_decay), config.weight_decay)
        decoupled = 0.0
    optimizer = optimisation.make_optimizer(
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
        loss=optimisation.make_loss(config.label_smoothing),
        loss_weights=None if config.label_weight == 1.0 else [config.label_weight],
        metrics=optimisation.make_metrics(),
        jit_compile=use_xla(config)[0],
    )
    if hasattr(optimizer, "build"):  # (larq's CaseOptimizer is a legacy optimiser: no build)
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


def prepare_model(config: TrainConfig, run_dir: Path,
                  data: Optional[datasets.Dataset] = None) -> tf.keras.Model:
    """``config``'s model, built and compiled; initialised from ``config.init_from``
    unless ``run_dir`` already has a checkpoint; with a ``config.teacher``, the
    student inside a ``distill.TeacherStudent``. Where the initialisation
    switches convolutions from real to binary weights, ``training.switch``
    carries their magnitudes and (with ``data``) re-estimates the BatchNorm
    statistics on ``SWITCH_BATCHES`` training batches. A model with int8
    edges (``config.int8_edges``) then has its ranges calibrated on the first
    ``config.calibration_images`` training images (``training.calibration``);
    resumed, its checkpoint holds them. Writes nothing, so a
    structure mismatch (``InitialisationError``) leaves no trace."""
    tf.keras.utils.set_random_seed(config.seed)
    student = build_model(config)
    teacher = runs.load_source(Path(config.teacher)) if config.teacher else None
    model = with_teacher(student, teacher.model, config) if teacher else student
    compile_model(model, config)
    if config.init_from and not tf.train.latest_checkpoint(run_dir / runs.CHECKPOINTS):
        same = teacher and Path(config.teacher).resolve() == Path(config.init_from).resolve()
        init = teacher if same else runs.load_source(Path(config.init_from))  # read once
        initialise_student(student, init, config)
        switch_to_binary(student, init.model, config, data)
        if config.int8_edges:
            calibrate_ranges(student, config, data)
    return model


def with_teacher(student: tf.keras.Model, teacher: tf.keras.Model,
                 config: TrainConfig) -> TeacherStudent:
    """``student`` distilled from ``teacher`` with ``config``'s loss weights."""
    return TeacherStudent(student, teacher, attention_weight=config.attention_weight,
                          output_weight=config.output_weight, temperature=config.temperature)


def initialise_student(student: tf.keras.Model, init: runs.ModelSource,
                       config: TrainConfig) -> None:
    """Copy ``init``'s weights into ``student`` (``training.initialise``); say so,
    and whether ``init`` is another network than the model's real-valued twin."""
    copied = initialise_from(student, init.model)
    print(f"Initialised {copied} layers from {config.init_from}.")
    twin = zoo.model_entry(config.model).twin
    if init.name not in (config.model, twin):
        print(f"Note: {init.name} is not {config.model}'s real-valued twin "
              f"({twin or 'none registered'}); the structures match.")


def switch_to_binary(student: tf.keras.Model, source: tf.keras.Model, config: TrainConfig,
                     data: Optional[datasets.Dataset]) -> None:
    """Where initialising from ``source`` switched convolutions from real to
    binary weights: carry their magnitudes and (with ``data``) re-estimate the
    BatchNorm statistics on ``SWITCH_BATCHES`` training batches (``training.switch``)."""
    batches = None if data is None else datasets.pipeline(
        data, "train", image_shape=config.input_shape, batch_size=config.batch_size,
        training=True, seed=config.seed).take(SWITCH_BATCHES)
    begin_binary_stage(student, source, batches)


def calibrate_ranges(student: tf.keras.Model, config: TrainConfig,
                     data: Optional[datasets.Dataset]) -> None:
    """Calibrate ``student``'s int8 ranges on the first ``config.calibration_images``
    training images (``training.calibration``)."""
    if data is None:
        raise ValueError("Calibrating int8 ranges needs the run's training data.")
    images = calibrate(student, datasets.pipeline(
        data, "train", image_shape=config.input_shape, batch_size=config.batch_size,
        limit=config.calibration_images))
    print(f"Calibrated {len(int8_ranges(student))} int8 ranges on {images} training images.")


def train_run(config: TrainConfig, data: datasets.Dataset, run_dir: Path, *,
              model: Optional[tf.keras.Model] = None, verbose: Optional[int] = None) -> Path:
    """Train one run directory with a resolved ``config`` (and its
    ``prepare_model``), from its last checkpoint if it has one; the directory
    gets its ``config.json`` when it is first written."""
    if model is None:
        model = prepare_model(config, run_dir, data)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise runs.RunError(f"Cannot write the run directory {run_dir}: {err}") from None
    if not (run_dir / runs.CONFIG).is_file():
        write_run_config(run_dir, config)

    checkpoint, manager, epoch_var = checkpoint_for(model, run_dir)
    initial_epoch = 0
    status = runs.restore_checkpoint(checkpoint, run_dir)
    if status is not None:
        status.assert_existing_objects_matched()
        initial_epoch = int(epoch_var.numpy())
    train_ds = datasets.pipeline(data, "train", image_shape=config.input_shape,
                                 batch_size=config.batch_size, training=True, seed=config.seed)
    val_ds = datasets.pipeline(data, "test", image_shape=config.input_shape,
                               batch_size=config.batch_size)
    if config.validation_steps:
        val_ds = val_ds.take(config.validation_steps)
    # History first, checkpoint second: killed between the two, the resumed run
    # repeats that epoch and replaces its history row, so no row is ever lost.
    callbacks = [
        HistoryRecorder(run_dir, initial_epoch, config.steps_per_epoch),
        EpochCheckpoint(manager, epoch_var),
        # Scalars only: writing the training step's graph (Keras's default) costs
        # seconds of protobuf serialisation per run (benchmarks/startup_time.py).
        tf.keras.callbacks.TensorBoard(log_dir=str(run_dir / runs.LOGS), profile_batch=0,
                                       write_graph=False,
                                       update_freq=max(1, config.steps_per_epoch // 100)),
    ]
    callbacks[:0] = epoch_schedules(model, config.epochs)
    verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 2)
    if verbose == 2:  # a log: Keras says one line per epoch; a line every 30 s within it
        batches = -(-config.test_examples // config.batch_size) if config.test_examples else None
        callbacks.append(FitProgress(config.steps_per_epoch, config.validation_steps or batches,
                                     stream=sys.stdout))
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
            verbose=verbose,
        )
    with checksums.recorded_path(run_dir / runs.MODEL) as tmp:
        hardware.save_float32(trained_part(model), tmp)
    return run_dir
