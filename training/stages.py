"""Training in stages, as one resumable run: each stage an ordinary run
directory inside the run, started from (and, in Real-to-Binary, taught by) the
stage before.

Two steps (Bi-Real's ``--two-step`` for deep nets; Real-to-Binary's strong
baseline, recipe ``real2bin_baseline``):

    step1-binary-activations/   1-bit activations, real weights (from --init-from)
    step2-binary/               fully binary, initialised from step 1
    step3-batchnorm/            optional (--recalibrate-bn): alpha_c sign(W) -> sign(W),
                                one epoch training BatchNorm only

Progressive (Real-to-Binary, recipe ``real2bin``), the same architecture with
its quantizers switched (``zoo.variants``), each stage initialised from and
taught by the previous one (attention matching + output distillation,
``training.distill``):

    stage0-real/                     no quantizers: the real-valued teacher
    stage1-soft/                     tanh activations, real weights
    stage2-binary-activations/       sign activations, real weights
    stage3-binary/                   fully binary (the final model)

A single run is a one-stage plan whose stage directory is the run's own.
``training.train`` trains a plan's stages in order as ordinary runs
(``training.run``); nothing here trains. The run's ``config.json`` and
``model.h5`` (a copy of the last stage's) sit beside the stages. A stage whose
``model.h5`` exists is done, so ``--resume`` after a kill at any point
continues the stage that was running and then the next. ``--stage N`` trains
stage N alone as a run of its own (``single_stage``). The last training stage
starts at the recipe's ``final_stage_lr_factor`` times the rate, with its
``final_stage_weight_decay``.

The functions take a ``training.config.TrainConfig`` and return new ones
(``dataclasses.replace``); they read only the recipes and the registry.
"""

import dataclasses
from pathlib import Path
from typing import List, Tuple

from bnnzoo import zoo
from bnnzoo.errors import UserError

from . import recipes

PROGRESSIVE = (("stage0-real", "real"), ("stage1-soft", "soft_activations"),
               ("stage2-binary-activations", "binary_activations"), ("stage3-binary", "binary"))


def kind(config) -> str:
    """"two_step", "progressive" or "" (a single run) for ``config``."""
    stages = recipes.chosen_recipe(zoo.model_entry(config.model).recipe, config.recipe).stages
    if config.two_step and stages == "progressive":
        raise UserError(f"{config.model} trains by its progressive teacher-student stages; "
                         "--two-step is for single-stage recipes.")
    return "two_step" if config.two_step else stages


def plan(config, run_dir: Path) -> List[Tuple[str, object]]:
    """The stage directories' names (relative to ``run_dir``) and
    configurations, in order; ``[("", config)]`` for a single run."""
    if config.stage is not None or not kind(config):
        return [("", config)]
    return _stages(config, run_dir)


def _stages(config, run_dir: Path) -> List[Tuple[str, object]]:
    """A staged recipe's (or ``--two-step``'s) stages, numbered."""
    run_dir = Path(run_dir).resolve()
    recipe = recipes.Recipe(**config.recipe)
    base = dataclasses.replace(config, two_step=False, recalibrate_bn=False, stage=None,
                               teacher=None)
    if kind(config) == "progressive":
        stages = [(PROGRESSIVE[0][0], dataclasses.replace(base, variant="real"))]
        for (name, variant), (previous, _) in zip(PROGRESSIVE[1:], PROGRESSIVE):
            stages.append((name, dataclasses.replace(
                base, variant=variant, init_from=str(run_dir / previous),
                teacher=str(run_dir / previous), attention_weight=recipe.attention_weight,
                output_weight=recipe.output_weight, temperature=recipe.temperature)))
    else:
        stages = [("step1-binary-activations", dataclasses.replace(base, variant="binary_activations")),
                  ("step2-binary", dataclasses.replace(
                      base, variant="binary", init_from=str(run_dir / "step1-binary-activations")))]
    name, last = stages[-1]
    stages[-1] = (name, dataclasses.replace(
        last, variant=recipe.final_stage_variant,
        learning_rate=last.learning_rate * recipe.final_stage_lr_factor,
        weight_decay=(last.weight_decay if recipe.final_stage_weight_decay is None
                      else recipe.final_stage_weight_decay)))
    if config.recalibrate_bn:
        stages.append(("step3-batchnorm", dataclasses.replace(
            base, variant="unscaled_weights", batchnorm_only=True, epochs=1,
            init_from=str(run_dir / "step2-binary"))))
    # Each stage knows its number: resumed on its own, a stage directory is one run.
    return [(name, dataclasses.replace(stage, stage=i)) for i, (name, stage) in enumerate(stages)]


def single_stage(config):
    """``config`` (with ``stage`` set) as the configuration of that stage alone:
    taught by ``config.teacher`` and started from ``config.init_from`` (by
    default the teacher, which has the same architecture)."""
    if not kind(config):
        raise UserError(f"{config.model} trains in one stage; --stage is for staged recipes "
                         "(real2bin, real2bin_baseline) and --two-step.")
    stages, n = _stages(config, Path(".")), config.stage
    if not 0 <= n < len(stages):
        raise UserError(f"--stage must be 0 to {len(stages) - 1} for {config.model}; got {n}.")
    name, stage = stages[n]
    taught = stage.teacher is not None
    if taught and not config.teacher:
        raise UserError(f"Stage {n} ({name}) is taught by stage {n - 1}: pass --teacher with "
                         f"that stage's run directory or model file.")
    if config.teacher and not taught:
        raise UserError(f"Stage {n} ({name}) has no teacher; drop --teacher.")
    if stage.init_from is not None and not (config.init_from or config.teacher):
        raise UserError(f"Stage {n} ({name}) starts from stage {n - 1}: pass --init-from "
                         "with that stage's run directory or model file.")
    return dataclasses.replace(stage, stage=n, teacher=config.teacher,
                               init_from=config.init_from or config.teacher)
