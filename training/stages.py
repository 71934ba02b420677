"""Training in stages, as one resumable run: each stage an ordinary run
directory inside the run, started from (and, where the recipe says so,
taught by) the stage before.

A recipe declares its stages (``zoo.recipes.Recipe.stages``: each a
directory name, a ``zoo.variants`` variant, which stage teaches it, if any,
and whether it starts from the stage before); this module reads the
declaration and knows no model. Three
examples, all declared in ``zoo.recipes``:

Two steps (``TWO_STEP``: Bi-Real's ``--two-step`` for deep nets, on any
single-stage recipe; Real-to-Binary's strong baseline's recipe):

    step1-binary-activations/   1-bit activations, real weights (from --init-from)
    step2-binary/               fully binary, initialised from step 1
    step3-batchnorm/            optional (--recalibrate-bn, with --two-step):
                                alpha_c sign(W) -> sign(W), one epoch training BatchNorm only

ReActNet's (``recipes.REACTNET_STAGES``): a teacher stage, then two steps
that both learn from it (the distributional loss), the first from new weights:

    teacher-real/                    no quantizers: the real-valued teacher
                                     (--teacher RUN|MODEL.h5: that network instead)
    step1-binary-activations/        1-bit activations, real weights
    step2-binary/                    fully binary, initialised from step 1

Progressive (Real-to-Binary's recipes), the same architecture with its
quantizers switched, each stage initialised from and taught by the previous
one (attention matching + output distillation, ``training.distill``):

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
``final_stage_weight_decay`` and ``final_stage_variant``.

The functions take a ``training.config.TrainConfig`` and return new ones
(``dataclasses.replace``); they read only the recipes and the registry.
"""

import dataclasses
from pathlib import Path

from bnnzoo import zoo
from bnnzoo.errors import UserError

from bnnzoo.zoo import recipes

#: ``--recalibrate-bn``'s stage after ``--two-step``: Bi-Real's weight scale
#: dropped, one epoch training BatchNorm only.
RECALIBRATION = recipes.Stage("step3-batchnorm", "unscaled_weights")


def declared(config) -> tuple[recipes.Stage, ...]:
    """The stages ``config``'s recipe declares, ``TWO_STEP`` for ``--two-step``,
    none for a single run."""
    stages = recipes.chosen_recipe(zoo.model_entry(config.model).recipe, config.recipe).stages
    if config.two_step and stages and stages != recipes.TWO_STEP:
        raise UserError(f"{config.model} trains {describe(stages)}; --two-step is for "
                        "single-stage recipes.")
    return recipes.TWO_STEP if config.two_step else stages


def describe(stages: tuple[recipes.Stage, ...]) -> str:
    """How a recipe with ``stages`` trains, in words for a message."""
    if not stages:
        return "in one stage"
    kind = ("teacher-student stages" if any(stage.taught for stage in stages) else "stages")
    return f"in {len(stages)} {kind} ({', '.join(stage.name for stage in stages)})"


def teacher_stage(config) -> str:
    """The name of the stage ``config``'s recipe declares as its teacher (one
    that other stages name as theirs), or ""."""
    named = {stage.teacher for stage in declared(config)}
    return next((stage.name for stage in declared(config) if stage.name in named), "")


def plan(config, run_dir: Path) -> list[tuple[str, object]]:
    """The stage directories' names (relative to ``run_dir``) and
    configurations, in order; ``[("", config)]`` for a single run. With
    ``config.teacher``, the recipe's teacher stage is that network instead
    of a stage to train."""
    if config.stage is not None or not declared(config):
        return [("", config)]
    stages = _stages(config, run_dir, given_teacher=config.teacher)
    replaced = teacher_stage(config) if config.teacher else None
    return [(name, stage) for name, stage in stages if name != replaced]


def _stages(config, run_dir: Path, given_teacher=None) -> list[tuple[str, object]]:
    """A staged recipe's (or ``--two-step``'s) stages, numbered: each after the
    first starts from the one before (unless ``fresh``), and a taught one is
    taught by the one before or by its named teacher (``given_teacher``, if
    set, for the recipe's teacher stage)."""
    run_dir = Path(run_dir).resolve()
    recipe = recipes.Recipe(**config.recipe)
    base = dataclasses.replace(config, two_step=False, recalibrate_bn=False, stage=None,
                               teacher=None)
    stages, where = [], {}
    replaced = teacher_stage(config) if given_teacher else None
    for stage in declared(config):
        step = dataclasses.replace(base, variant=stage.variant)
        if stage.fresh:  # new weights (``--init-from`` is the first stage's)
            step = dataclasses.replace(step, init_from=None)
        if stages:
            previous = str(run_dir / stages[-1][0])
            if not stage.fresh:
                step = dataclasses.replace(step, init_from=previous)
            if stage.taught:
                step = dataclasses.replace(
                    step, teacher=where[stage.teacher] if stage.teacher else previous,
                    attention_weight=recipe.attention_weight,
                    output_weight=recipe.output_weight, temperature=recipe.temperature,
                    label_weight=recipe.taught_label_weight)
        where[stage.name] = (str(given_teacher) if stage.name == replaced
                             else str(run_dir / stage.name))
        stages.append((stage.name, step))
    name, last = stages[-1]
    stages[-1] = (name, dataclasses.replace(
        last, variant=recipe.final_stage_variant,
        learning_rate=last.learning_rate * recipe.final_stage_lr_factor,
        weight_decay=(last.weight_decay if recipe.final_stage_weight_decay is None
                      else recipe.final_stage_weight_decay)))
    if config.recalibrate_bn:
        stages.append((RECALIBRATION.name, dataclasses.replace(
            base, variant=RECALIBRATION.variant, batchnorm_only=True, epochs=1,
            init_from=str(run_dir / name))))
    # Each stage knows its number: resumed on its own, a stage directory is one run.
    return [(name, dataclasses.replace(stage, stage=i)) for i, (name, stage) in enumerate(stages)]


def single_stage(config):
    """``config`` (with ``stage`` set) as the configuration of that stage alone:
    taught by ``config.teacher`` and started from ``config.init_from`` (by
    default, for a stage that starts from the stage teaching it, the teacher:
    the same architecture)."""
    if not declared(config):
        raise UserError(f"{config.model} trains in one stage; --stage is for staged recipes "
                        "and --two-step.")
    stages, n = _stages(config, Path(".")), config.stage
    if not 0 <= n < len(stages):
        raise UserError(f"--stage must be 0 to {len(stages) - 1} for {config.model}; got {n}.")
    name, stage = stages[n]
    taught = stage.teacher is not None
    teacher = Path(stage.teacher).name if taught else ""
    if taught and not config.teacher:
        raise UserError(f"Stage {n} ({name}) is taught by {teacher}: pass --teacher with "
                         f"that stage's run directory or model file.")
    if config.teacher and not taught:
        raise UserError(f"Stage {n} ({name}) has no teacher; drop --teacher.")
    starts_from_teacher = stage.init_from is not None and Path(stage.init_from).name == teacher
    if stage.init_from is not None and not (config.init_from or starts_from_teacher):
        raise UserError(f"Stage {n} ({name}) starts from stage {n - 1}: pass --init-from "
                         "with that stage's run directory or model file.")
    return dataclasses.replace(
        stage, stage=n, teacher=config.teacher,
        init_from=config.init_from or (config.teacher if starts_from_teacher else None))
