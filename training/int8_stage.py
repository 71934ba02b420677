r"""The int8 stage: a trained run's network with int8 edges, calibrated and
fine-tuned quantization-aware, as a run directory of its own inside the run.

    RUN/                  the trained (float-edge) run, left as it is
    RUN/int8/             config.json, checkpoints/, model.h5, history: an ordinary
                          run (training.run) of the same network with int8 ranges
                          (zoo.int8_edges), initialised from RUN/model.h5

The stage's configuration is the run's (dataset, input, batch, recipe), its
final stage's variant, with ``int8_edges``, ``init_from`` = the run, one epoch
of ``steps`` steps at ``QAT_LR_FACTOR`` times the run's peak learning rate
(the recipe's schedule over those steps), in float32 (the int8 levels
\(s k\) are exact only in float32). Before the first step the ranges are
calibrated on ``calibration_images`` training images (``training.calibration``).
Killed at any point, ``quantize`` again continues it from its last
checkpoint (the ranges are in the checkpoint); a finished stage is not
trained again, and different options for an existing stage are refused.
``cli.py export RUN --int8`` converts ``RUN/int8/model.h5``.
"""

import dataclasses
from pathlib import Path
from typing import Optional

from bnnzoo import datasets, runs
from bnnzoo.errors import UserError

from . import stages
from .config import CALIBRATION_IMAGES, TrainConfig, config_from_dict
from .run import train_run

QAT_LR_FACTOR = 0.1
DEFAULT_STEPS = 100


def stage_config(run_dir: Path, *, steps: int = DEFAULT_STEPS, batch_size: Optional[int] = None,
                 learning_rate: Optional[float] = None,
                 calibration_images: int = CALIBRATION_IMAGES) -> TrainConfig:
    """The int8 stage's configuration for the trained run ``run_dir``."""
    if steps < 1 or calibration_images < 1 or (batch_size is not None and batch_size < 1):
        raise UserError("--steps, --batch-size and --calibration-images must be at least 1.")
    if learning_rate is not None and learning_rate <= 0:
        raise UserError("--learning-rate must be positive.")
    run = config_from_dict(runs.read_config(run_dir))
    if run.int8_edges:
        raise UserError(f"{run_dir} is an int8 stage already; quantize the run it belongs to.")
    final = stages.plan(run, run_dir)[-1][1]
    return dataclasses.replace(
        run, variant=final.variant, batchnorm_only=False, two_step=False, recalibrate_bn=False,
        stage=None, teacher=None, attention_weight=0.0, output_weight=0.0, temperature=1.0,
        label_weight=1.0,
        init_from=str(Path(run_dir).resolve()), int8_edges=True,
        calibration_images=calibration_images, epochs=1, steps_per_epoch=steps,
        batch_size=batch_size or run.batch_size,
        learning_rate=learning_rate or QAT_LR_FACTOR * run.learning_rate,
        precision="float32", strategy="default", options=None)


def quantize(run: Optional[Path] = None, *, steps: int = DEFAULT_STEPS,
             batch_size: Optional[int] = None, learning_rate: Optional[float] = None,
             calibration_images: int = CALIBRATION_IMAGES,
             verbose: Optional[int] = None) -> Path:
    """Train the int8 stage of ``run`` (default: the latest run); return its directory."""
    run_dir = runs.resolve_run(run)
    if not (run_dir / runs.MODEL).is_file():
        raise runs.RunError(f"{run_dir} has not finished training (no {runs.MODEL}); finish it "
                            "with `cli.py train MODEL --resume` first.")
    config = stage_config(run_dir, steps=steps, batch_size=batch_size,
                          learning_rate=learning_rate, calibration_images=calibration_images)
    stage_dir = run_dir / runs.INT8_STAGE
    if (stage_dir / runs.CONFIG).is_file():
        stored = config_from_dict(runs.read_config(stage_dir))
        differ = [f.name for f in dataclasses.fields(TrainConfig)
                  if getattr(stored, f.name) != getattr(config, f.name)
                  and f.name not in ("xla",)]
        if differ:
            raise runs.RunError(
                f"{stage_dir} was started with other options ({', '.join(differ)}): pass the "
                "same options to continue it, or remove it to start again.")
        config = stored
    if (stage_dir / runs.MODEL).is_file():
        print(f"{stage_dir} has already finished its {config.steps_per_epoch} steps.")
        return stage_dir
    data = datasets.load(config.dataset, config.data_dir)
    return train_run(config, data, stage_dir, verbose=verbose)
