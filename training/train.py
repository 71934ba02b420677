"""Training: ``train(config)`` trains a model from its options to a finished run directory.

    options -> run directory (new, or ``resume``: the stored one, the options
    checked against it) -> configuration resolved from the recipe and the
    dataset (``training.config``), precision and XLA decided -> the plan's
    stages (``training.stages``; a single run is a one-stage plan) -> each
    stage trained as an ordinary run (``training.run``) -> ``model.h5``

Every process of a multi-worker run (``training.distribution``) follows this
same path; a worker other than the chief writes to a temporary folder of its
own (a copy of the chief's run when resuming), removed at the end.
"""

import dataclasses
import shlex
import shutil
import time
from pathlib import Path
from typing import Optional

import tensorflow as tf

from bnnzoo import checksums, datasets, quiet, runs
from bnnzoo.errors import UserError

from . import distribution, hardware, history, stages
from .config import TrainConfig, config_from_dict, resolve, typed_options
from .run import prepare_model, train_run, use_xla, write_run_config


def train(config: TrainConfig, output: Optional[Path] = None, resume: bool = False,
          verbose: Optional[int] = None) -> Path:
    """Train ``config.model``; returns the run directory.

    With ``config.strategy`` other than "default", everything is built in
    that ``tf.distribute`` strategy's scope (``training.distribution``); a
    resumed run may use another strategy than the one it started with.
    """
    with quiet.native_logs_filtered():  # XLA's I0000 lines
        return _train(config, output, resume, verbose)


def _train(config: TrainConfig, output: Optional[Path], resume: bool,
           verbose: Optional[int]) -> Path:
    strategy = distribution.make_strategy(config.strategy)
    chief = distribution.is_chief(strategy)
    folder = output
    if not chief:
        chief_dir = runs.resolve_run(output) if resume else Path(output or default_run_dir(config))
        folder = distribution.worker_folder(chief_dir)
        print(f"Worker {distribution.cluster_spec()['task']['index']}: training beside the chief, "
              f"writing to {folder} (removed at the end).")
    try:
        if not chief and resume:
            shutil.copytree(chief_dir, folder, dirs_exist_ok=True)
        run_dir, stored = prepare_run(config, folder, resume)
        config = dataclasses.replace(stored, strategy=config.strategy)
        data = datasets.load(config.dataset, config.data_dir)
        if not resume:
            config = choose_speed(resolve(config, data))
        with strategy.scope():
            train_plan(config, data, run_dir, resume=resume, verbose=verbose,
                       point_latest=chief)
    finally:
        if not chief:
            shutil.rmtree(folder, ignore_errors=True)
    return run_dir if chief else chief_dir


def train_plan(config: TrainConfig, data: datasets.Dataset, run_dir: Path, *, resume: bool,
               verbose: Optional[int] = None, point_latest: bool = True) -> Path:
    """Train the stages of ``config``'s plan still without a ``model.h5``, in order."""
    plan = stages.plan(config, run_dir)
    for finished in dict.fromkeys([run_dir / name / runs.MODEL for name, _ in plan]
                                  + [run_dir / runs.MODEL]):
        if finished.is_file():
            checksums.verify(finished)  # a damaged stage is neither done nor taught from
    pending = [(name, stage) for name, stage in plan
               if not (run_dir / name / runs.MODEL).is_file()]
    if not pending and (run_dir / runs.MODEL).is_file():
        if point_latest:
            runs.set_latest(run_dir)
        print(f"{run_dir} has already finished "
              + ("every stage." if len(plan) > 1 else f"its {config.epochs} epochs."))
        return run_dir
    # The first pending stage's model before anything is written: a structure
    # mismatch with --init-from stops here and leaves no run behind.
    model = prepare_model(pending[0][1], run_dir / pending[0][0], data) if pending else None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"Cannot create the run directory {run_dir}: {err.strerror or err}.") from None
    if not resume:
        write_run_config(run_dir, config)
    if point_latest:
        runs.set_latest(run_dir)
    for name, stage in pending:
        if name:
            print(f"{run_dir}: {name}")
        train_run(stage, data, run_dir / name, model=model, verbose=verbose)
        model = None  # the next stage builds its own, from (and taught by) this one
    if len(plan) > 1:
        last = run_dir / plan[-1][0] / runs.MODEL
        checksums.verify(last)
        with checksums.recorded_path(run_dir / runs.MODEL, digest=checksums.recorded(last)) as tmp:
            shutil.copyfile(last, tmp)
    return run_dir


def choose_speed(config: TrainConfig) -> TrainConfig:
    """``config`` with XLA decided (``training.xla``); says the precision and XLA once."""
    jit, why = use_xla(config)
    tf.keras.backend.clear_session()  # the probe's models: names and memory
    machine = ", ".join(hardware.native_bf16()) or "no native bf16"
    print(f"Precision {config.precision} ({machine}); XLA {'on' if jit else 'off'} ({why}).")
    return dataclasses.replace(config, xla="on" if jit else "off")


def default_run_dir(config: TrainConfig) -> Path:
    dataset = Path(config.dataset).name or "data"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return runs.runs_root() / f"{config.model}-{dataset}-{stamp}"


def prepare_run(config: TrainConfig, output: Optional[Path], resume: bool) -> tuple[Path, TrainConfig]:
    """The run directory and its configuration, new or (``resume``) stored.

    Never overwrites: a new run refuses an existing non-empty directory; a
    resumed run refuses options that differ from its stored configuration.
    """
    if resume:
        run_dir = runs.resolve_run(output)
        stored = runs.read_config(run_dir)
        try:
            stored = dataclasses.asdict(config_from_dict(stored))
        except (TypeError, ValueError) as err:
            raise runs.RunError(f"{run_dir / runs.CONFIG} is not a run configuration: {err}") from None
        # An option typed now must be what was typed when the run started, or
        # what the run resolved it to (a stage's own rate, the recipe's epochs).
        typed, started = typed_options(config), stored.get("options") or {}
        clashes = [k for k, value in typed.items()
                   if value != stored.get(k) and (k not in started or value != started[k])]
        if stored["model"] != config.model:
            clashes.insert(0, "model")
        if clashes == ["epochs"]:
            return run_dir, extend(run_dir, config_from_dict(stored), config.epochs)
        if clashes:
            raise runs.RunError(
                f"--resume continues {run_dir} as configured; these options differ "
                f"from its config.json: {', '.join(clashes)}."
            )
        return run_dir, config_from_dict(stored)
    run_dir = Path(output) if output else default_run_dir(config)
    try:
        used = run_dir.exists() and any(run_dir.iterdir())
    except OSError as err:  # a file, or a folder this user cannot read
        raise runs.RunError(f"Cannot use {run_dir} as a run directory: {err}") from None
    if used:
        raise runs.RunError(
            f"{run_dir} already exists and is not empty: pass --resume to continue "
            "that run, or choose another --output."
        )
    return run_dir, dataclasses.replace(config, options=typed_options(config))


def extend(run_dir: Path, stored: TrainConfig, epochs: int) -> TrainConfig:
    """``--resume --epochs N`` with more epochs than ``run_dir`` was planned
    for: the run goes on to N epochs from its last checkpoint, its schedules
    (learning rate, SiMaN's clip) re-planned over the N. Staged runs and fewer
    epochs are refused, naming what to do instead."""
    done = len(history.read_history(run_dir))
    if len(stages.plan(stored, run_dir)) > 1:
        raise runs.RunError(
            f"{run_dir} trains in stages, each with its own schedule, so --epochs cannot "
            f"extend it; train it again with {epochs} epochs: "
            f"{command_line(stored.model, dict(stored.options or {}, epochs=epochs))}")
    if epochs <= done:
        raise runs.RunError(f"{run_dir} has already trained {done} epochs; --epochs {epochs} "
                            f"would not extend it (give more than {done}).")
    print(f"Extending {run_dir} from {stored.epochs} to {epochs} epochs: its learning-rate "
          f"schedule is re-planned over {epochs} epochs and continues at epoch {done + 1} "
          f"as a {epochs}-epoch run would.")
    options = dict(stored.options or {}, epochs=epochs)
    extended = dataclasses.replace(stored, epochs=epochs, options=options)
    # The finished model first: killed before the new config.json is written,
    # the run is still its finished self (--resume rewrites the same model.h5).
    (run_dir / runs.MODEL).unlink(missing_ok=True)
    checksums.sidecar(run_dir / runs.MODEL).unlink(missing_ok=True)
    runs.write_config(run_dir, {**runs.read_config(run_dir), "epochs": epochs, "options": options})
    return extended


def command_line(model: str, options: dict) -> str:
    """The ``cli.py train`` command with ``options`` (as ``typed_options`` gives them)."""
    words = ["python", "cli.py", "train", model]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif value is not False and value is not None:
            words += [flag, shlex.quote(str(value))]
    return " ".join(words)
