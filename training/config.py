"""A training run's configuration: ``TrainConfig``, stored as the run's ``config.json``.

``resolve`` fills what the user left out from the model's recipe
(``training.recipes``) and the dataset, checks the options, and decides the
precision (``training.hardware``); a ``--stage N`` configuration becomes that
stage's (``training.stages``).
"""

import dataclasses
from typing import Optional, Tuple, Union

from bnnzoo import datasets, zoo

from . import hardware, recipes, stages, xla

DEFAULT_LARGE_INPUT = 224


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run; stored as the run's ``config.json``.

    ``None`` fields are filled in from the model's recipe (or the one named by
    ``recipe``) and the dataset.
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
    int8_edges: bool = False  # int8 ranges at the float layers (zoo.int8_edges): the int8 stage
    calibration_images: int = 512  # with int8_edges: training images that calibrate the ranges
    options: Optional[dict] = None  # the OVERRIDABLE options as typed: what --resume checks
    # A recipe's name (training.recipes) instead of the model's; resolve() fills in its fields.
    recipe: Union[None, str, dict] = None
    # Filled in by resolve():
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
    recipe = stored.get("recipe")
    if recipe and "final_stage_weight_decay" not in recipe:  # runs from before the field
        stored["recipe"] = {**recipe, "final_stage_weight_decay": 0.0 if recipe.get("stages")
                            else None}
    return TrainConfig(**{k: v for k, v in stored.items() if k in fields})


OVERRIDABLE = ("dataset", "data_dir", "input_size", "epochs", "steps_per_epoch",
               "batch_size", "learning_rate", "weight_decay", "label_smoothing",
               "validation_steps", "xla", "precision", "seed", "init_from", "variant",
               "batchnorm_only", "two_step", "recalibrate_bn", "width", "stage", "teacher",
               "recipe")


def typed_options(config: TrainConfig) -> dict:
    """The ``OVERRIDABLE`` options ``config`` sets to other than their defaults."""
    defaults = TrainConfig(model=config.model)
    return {k: getattr(config, k) for k in OVERRIDABLE if getattr(config, k) != getattr(defaults, k)}


def resolve(config: TrainConfig, data: datasets.Dataset) -> TrainConfig:
    """Fill the ``None`` fields from the recipe and the dataset."""
    own = zoo.model_entry(config.model).recipe
    recipe = recipes.chosen_recipe(own, config.recipe)
    staging = recipes.get_recipe(own).stages
    if recipe.stages != staging:
        raise ValueError(f"The recipe {recipe.name} trains {stages.describe(recipe.stages)}, "
                         f"{config.model}'s own ({own}) {stages.describe(staging)}: a recipe "
                         "may change how a model trains, not its stages.")
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
    stages.declared(c)  # refuses --two-step for a recipe with other stages
    if c.recalibrate_bn and not c.two_step:  # it drops Bi-Real's weight scale
        raise ValueError("--recalibrate-bn is the last part of --two-step; pass both.")
    if c.stage is not None:
        c = stages.single_stage(c)
    elif c.teacher:
        raise ValueError("--teacher teaches one stage: pass --stage N with it.")
    return c
