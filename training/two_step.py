"""Bi-Real Net's two-step training for deep nets, as one resumable run.

    step1-binary-activations/   1-bit activations, real weights
                                (from --init-from, e.g. the clip-trained real twin)
    step2-binary/               fully binary, initialised from step 1
    step3-batchnorm/            optional (--recalibrate-bn): alpha_c sign(W) -> sign(W),
                                one epoch training BatchNorm only
    config.json, model.h5       the whole run's configuration and final model

Each step is an ordinary run directory, trained and checkpointed by
``train_run``; a step whose ``model.h5`` exists is done. So ``--resume`` after
a kill at any point continues the step that was running and then the next.
"""

import dataclasses
import shutil
from pathlib import Path
from typing import List, Optional, Tuple

from bnnzoo import atomic, datasets

from . import runs
from .train import TrainConfig, package_versions, prepare_model, train_run


def steps(config: TrainConfig, run_dir: Path) -> List[Tuple[str, TrainConfig]]:
    """The step directories' names and configurations, in order."""
    run_dir = run_dir.resolve()
    base = dataclasses.replace(config, two_step=False, recalibrate_bn=False)
    one = dataclasses.replace(base, variant="binary_activations")
    plan = [("step1-binary-activations", one),
            ("step2-binary", dataclasses.replace(
                base, variant="binary", init_from=str(run_dir / "step1-binary-activations")))]
    if config.recalibrate_bn:
        plan.append(("step3-batchnorm", dataclasses.replace(
            base, variant="unscaled_weights", batchnorm_only=True, epochs=1,
            init_from=str(run_dir / "step2-binary"))))
    return plan


def train_two_step(config: TrainConfig, data: datasets.Dataset, run_dir: Path, resume: bool,
                   verbose: Optional[int] = None) -> Path:
    plan = steps(config, run_dir)
    pending = [(name, step) for name, step in plan
               if not (run_dir / name / runs.MODEL).is_file()]  # a step with model.h5 is done
    # The first pending step's model before anything is written: a structure
    # mismatch with --init-from stops here and leaves no run behind.
    model = prepare_model(pending[0][1], run_dir / pending[0][0]) if pending else None
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        runs.write_config(run_dir, {**dataclasses.asdict(config), "versions": package_versions()})
    runs.set_latest(run_dir)
    for name, step_config in pending:
        step_dir = run_dir / name
        print(f"{run_dir}: {name}")
        train_run(step_config, data, step_dir, resume=(step_dir / runs.CONFIG).is_file(),
                  verbose=verbose, point_latest=False, model=model)
        model = None  # the next step builds its own, initialised from this one
    last = plan[-1][0]
    with atomic.atomic_path(run_dir / runs.MODEL) as tmp:
        shutil.copyfile(run_dir / last / runs.MODEL, tmp)
    return run_dir
