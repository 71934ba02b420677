"""A training run's configuration: ``TrainConfig``, stored as the run's ``config.json``.

Each setting is declared once, in one of three groups that ``TrainConfig``
joins (in this order, one flat dataclass):

- ``TrainOptions``: what a user chooses. Each field carries its help (and its
  choices, or that it names a path) in its metadata; ``cli.py train``'s
  options are generated from these fields, ``OVERRIDABLE`` (what ``--resume``
  checks, what ``typed_options`` records) is read from them, and a test checks
  docs/cli.md's option table against them.
- ``StageWiring``: what the stages of a staged recipe (``training.stages``)
  and the int8 stage (``training.int8_stage``) set, never a user.
- ``DatasetFacts``: what ``resolve`` reads from the dataset.

``resolve`` fills what the user left out from the model's recipe
(``zoo.recipes``) and the dataset, checks the options, and decides the
precision (``training.hardware``); a ``--stage N`` configuration becomes that
stage's (``training.stages``).
"""

import dataclasses
from collections.abc import Sequence
from typing import Optional, Union

from bnnzoo import datasets, zoo
from bnnzoo.errors import UserError

from bnnzoo.zoo import recipes

from . import distribution, hardware, stages, xla

DEFAULT_LARGE_INPUT = 224
CALIBRATION_IMAGES = 512  # the int8 stage's default (training.int8_stage)


def option(default, help: str, *, choices: Sequence[str] = (), path: Optional[str] = None,
           command_line: bool = True, checked_on_resume: bool = True,
           shorthand: Optional[tuple[str, str]] = None):
    """A user option's declaration: a dataclass field with its ``default`` and
    ``help``. ``choices`` limits its values; ``path`` says it names a file or
    folder ("existing": it must exist, and is stored absolute; "any": as
    given); ``command_line=False`` keeps it to the Python API;
    ``checked_on_resume=False`` lets ``--resume`` change it; ``shorthand``
    ``(name, value)`` adds the flag ``--name`` for ``--option value``."""
    return dataclasses.field(default=default, metadata=dict(
        help=help, choices=tuple(choices), path=path, command_line=command_line,
        checked_on_resume=checked_on_resume, shorthand=shorthand))


@dataclasses.dataclass
class TrainOptions:
    """What a user chooses: ``None`` fields are filled in from the model's
    recipe (or the one named by ``recipe``) and the dataset."""

    model: str
    dataset: str = option("fashion_mnist", "TFDS name (cifar10, imagenet2012, mnist, ...) or a "
                          "dataset folder.")
    data_dir: Optional[str] = option(
        None, "Folder holding the dataset's local files (or TFDS's prepared data) "
        "[/usr/share/datasets/NAME, then TFDS's default].", path="any")
    # A recipe's name (zoo.recipes) instead of the model's; resolve() stores its fields.
    recipe: Union[None, str, dict] = option(
        None, "Train with this recipe of zoo/recipes.py instead of the model's paper "
        "recipe (e.g. a short-budget variant) [the model's].")
    epochs: Optional[int] = option(None, "Epochs [recipe's].")
    steps_per_epoch: Optional[int] = option(None, "Batches per epoch, for quick runs [whole "
                                            "train split].")
    batch_size: Optional[int] = option(None, "Batch size [recipe's].")
    learning_rate: Optional[float] = option(None, "Peak learning rate [recipe's, scaled to the "
                                            "batch size].")
    weight_decay: Optional[float] = option(
        None, "Weight decay strength on real-valued weights, never binary kernels [recipe's]: "
        "decoupled for Bi-Real (Adam), coupled L2 (PyTorch's) for SiMaN (SGD), L2 on kernels "
        "for Real-to-Binary.")
    input_size: Optional[int] = option(None, "Model input side in pixels [dataset's, 224 for "
                                       "varying sizes].")
    validation_steps: Optional[int] = option(None, "Validate on this many test batches per "
                                             "epoch [all].")
    xla: str = option("auto", "Compile the training step with XLA; auto times a few steps both "
                      "ways on this machine (cached) and keeps the faster.",
                      choices=xla.CHOICES, shorthand=("no_xla", "off"))  # resolved to on/off
    precision: str = option(
        "auto", "Mixed precision (variables stay float32); auto: bfloat16 where this CPU "
        "(AMX-BF16, AVX512-BF16) or a GPU computes it natively, else float32.",
        choices=hardware.PRECISIONS)  # resolved
    seed: int = option(0, "Seed of the initial weights, the data order and augmentation.")
    init_from: Optional[str] = option(
        None, "Start from this trained run or model file of the same structure (Bi-Real: the "
        "real-valued twin, e.g. resnet18 for bireal18).", path="existing")
    two_step: bool = option(False, "Bi-Real's two steps in one run: binary activations with "
                            "real weights, then fully binary from step 1.")
    recalibrate_bn: bool = option(False, "With --two-step: then drop the weight scale (sign(W)) "
                                  "and retrain BatchNorm only, one epoch.")
    width: Optional[int] = option(None, "First-stage width, for compact nets [the model's: 64 "
                                  "for ImageNet ResNets].")
    # A user trains one stage alone with these two; training.stages sets them for each stage.
    stage: Optional[int] = option(None, "Train only this stage of a staged recipe (real2bin: "
                                  "0-3; reactnet: 0-2; two-step: 0-1).")
    teacher: Optional[str] = option(None, "With --stage: the trained run or model file that "
                                    "teaches it (the previous stage); without --stage, for a "
                                    "recipe with a teacher stage, that stage.", path="existing")
    strategy: str = option(
        "default", "mirrored: every GPU here (without GPUs, two logical CPU devices); "
        "multi-worker: the machines in $TF_CONFIG, each running this command.",
        choices=distribution.STRATEGIES, checked_on_resume=False)
    # Options of the Python API only (a stage also sets variant and batchnorm_only):
    label_smoothing: Optional[float] = option(None, "Label smoothing [recipe's].",
                                              command_line=False)
    variant: str = option("binary", "Which quantizers the binary layers use (zoo.variants).",
                          command_line=False)
    batchnorm_only: bool = option(False, "Train only BatchNorm (recalibration).",
                                  command_line=False)


@dataclasses.dataclass
class StageWiring:
    """What a stage of a staged recipe, or the int8 stage, sets."""

    attention_weight: float = 0.0  # with a teacher: training.distill's loss weights
    output_weight: float = 0.0
    temperature: float = 1.0
    label_weight: float = 1.0  # the labels' cross-entropy beside a teacher's losses
    int8_edges: bool = False  # int8 ranges at the float layers (zoo.int8_edges): the int8 stage
    # With int8_edges: the training images that calibrate the ranges.
    calibration_images: int = CALIBRATION_IMAGES
    options: Optional[dict] = None  # the OVERRIDABLE options as typed: what --resume checks


@dataclasses.dataclass
class DatasetFacts:
    """What ``resolve`` reads from the dataset."""

    input_shape: Optional[tuple[int, int, int]] = None
    num_classes: Optional[int] = None
    train_examples: Optional[int] = None
    test_examples: Optional[int] = None
    dataset_source: Optional[str] = None
    class_names: Optional[list] = None


@dataclasses.dataclass
class TrainConfig(DatasetFacts, StageWiring, TrainOptions):
    """Everything that defines a run (``TrainOptions``, then ``StageWiring``,
    then ``DatasetFacts``); stored as the run's ``config.json``."""


def option_fields(*, command_line: Optional[bool] = None) -> tuple[dataclasses.Field, ...]:
    """The user options' fields, in declaration order (``command_line``: only those
    the command line takes, or only those it does not)."""
    return tuple(f for f in dataclasses.fields(TrainOptions) if "help" in f.metadata
                 and command_line in (None, f.metadata["command_line"]))


def config_from_dict(stored: dict) -> TrainConfig:
    """A run's ``config.json`` back as a ``TrainConfig`` (extra keys such as
    ``versions`` are dropped)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    stored = dict(stored)
    if "jit_compile" in stored:  # runs from before --xla / --precision
        stored.setdefault("xla", "on" if stored["jit_compile"] else "off")
        stored.setdefault("precision", "float32")
    recipe = stored.get("recipe")
    if recipe and "final_stage_weight_decay" not in recipe:  # runs from before the field
        stored["recipe"] = {**recipe, "final_stage_weight_decay": 0.0 if recipe.get("stages")
                            else None}
    return TrainConfig(**{k: v for k, v in stored.items() if k in fields})


#: The options a run records as typed and ``--resume`` must find unchanged.
OVERRIDABLE = tuple(f.name for f in option_fields() if f.metadata["checked_on_resume"])


def typed_options(config: TrainConfig) -> dict:
    """The ``OVERRIDABLE`` options ``config`` sets to other than their defaults."""
    defaults = TrainConfig(model=config.model)
    return {k: getattr(config, k) for k in OVERRIDABLE if getattr(config, k) != getattr(defaults, k)}


def check_choices(config: TrainConfig) -> None:
    """Refuse an option outside its declared choices (the command line cannot
    pass one; the Python API can)."""
    for field in option_fields():
        value, choices = getattr(config, field.name), field.metadata["choices"]
        if choices and value not in choices:
            raise UserError(f"Unknown --{field.name.replace('_', '-')} {value!r}. "
                            f"Choices: {', '.join(choices)}.")


def resolve(config: TrainConfig, data: datasets.Dataset) -> TrainConfig:
    """Fill the ``None`` fields from the recipe and the dataset."""
    own = zoo.model_entry(config.model).recipe
    recipe = recipes.chosen_recipe(own, config.recipe)
    staging = recipes.get_recipe(own).stages
    if recipe.stages != staging:
        raise UserError(f"The recipe {recipe.name} trains {stages.describe(recipe.stages)}, "
                        f"{config.model}'s own ({own}) {stages.describe(staging)}: a recipe "
                        "may change how a model trains, not its stages.")
    check_choices(config)
    c = dataclasses.replace(config)
    c.recipe = dataclasses.asdict(recipe)
    if c.precision == "auto" and c.strategy == "multi-worker":
        c.precision = "float32"  # each worker would detect its own hardware: one precision for all
    c.precision = hardware.resolve_precision(c.precision)
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
            raise UserError(f"{name.replace('_', '-')} must be at least 1.")
    if c.steps_per_epoch is None:
        c.steps_per_epoch = max(1, c.train_examples // c.batch_size)
    if c.learning_rate <= 0:
        raise UserError("learning-rate must be positive.")
    stages.declared(c)  # refuses --two-step for a recipe with other stages
    if c.recalibrate_bn and not c.two_step:  # it drops Bi-Real's weight scale
        raise UserError("--recalibrate-bn is the last part of --two-step; pass both.")
    if c.stage is not None:
        c = stages.single_stage(c)
    elif c.teacher and not stages.teacher_stage(c):
        raise UserError("--teacher teaches one stage: pass --stage N with it.")
    return c
