"""The papers' training recipes, as data: each model's optimiser, learning-rate
schedule, epochs, batch size, weight decay and label smoothing as its paper
(or larq-zoo's training task) gives them, and, for a staged recipe, the stages
it trains in (``Recipe.stages``). A model's registry entry names its recipe;
``train`` options override single fields; ``training.optimisation`` turns a
recipe into Keras objects and ``training.stages`` runs its stages.

Weight decay, where a recipe has any, never touches binary kernels: their
latent weights only matter through their sign (Bi-Real Net, SiMaN).
"""

import dataclasses
from typing import Optional, Union

from bnnzoo.errors import UnknownName


@dataclasses.dataclass(frozen=True)
class Recipe:
    r"""A training recipe.

    ``learning_rate`` is the paper's at ``reference_batch_size`` and scales
    linearly with the batch size; ``schedule`` decays it to 0 over the run
    ("linear" or "cosine", after ``warmup_epochs`` of linear warm-up) or in
    steps ("step").
    ``weight_decay`` never touches binary kernels or their learned scales
    (``zoo.binary_layers.undecayed_weights``). ``weight_decay_mode``:
    "decoupled" (AdamW / SGDW: \( w \leftarrow w - \eta\lambda w \) beside the
    update) or "l2" (PyTorch's ``weight_decay``: \( \lambda w \) added to the
    gradient, i.e. \( \tfrac{\lambda}{2}\lVert w \rVert^2 \) added to the
    loss, which momentum then accumulates; about \( 1/(1-\mu) \) times
    stronger than decoupled decay of the same \( \lambda \)) or "l2_kernels"
    (the same on the convolution and dense kernels only, the classifier's
    excepted: Keras's ``kernel_regularizer=l2(λ/2)``, as larq-zoo sets it).

    ``stages``: the recipe's training stages in order (``Stage``;
    ``training.stages`` trains them), none for one run: ``TWO_STEP`` (binary
    activations with real weights, then fully binary from it) or
    Real-to-Binary's progressive teacher-student stages; the last stage's learning
    rate is ``final_stage_lr_factor`` times the others' and its weight decay
    ``final_stage_weight_decay`` (``None``: the run's; 0 for larq-zoo's fully
    binary stages) and its quantizers ``final_stage_variant`` (``zoo.variants``). Taught stages add
    attention matching (``attention_weight``) and output distillation
    (``output_weight``, softmax ``temperature``), see ``training.distill``,
    to the labels' cross-entropy weighted ``taught_label_weight`` (ReActNet:
    0, the distributional loss alone).

    ``decay_multipliers`` gives a "step" schedule's factors one by one
    (\( \eta_0 m_k \) after the \(k\)-th boundary) where they are not powers
    of one ``decay_factor`` (larq-zoo's XNOR-Net and DoReFa-Net tasks). With
    ``binary_optimizer``, the binary kernels (larq's ``Bop.is_binary_variable``)
    are trained by that optimiser at ``binary_learning_rate`` and every other
    weight by ``optimizer`` at ``learning_rate``, both on the same schedule
    (larq's ``CaseOptimizer``, as larq-zoo's QuickNet task).
    """

    name: str
    optimizer: str
    learning_rate: float
    reference_batch_size: int
    schedule: str
    epochs: int
    batch_size: int
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    warmup_epochs: int = 0
    weight_decay_mode: str = "decoupled"
    decay_at: tuple[float, ...] = ()  # "step": fractions of the run where the rate drops
    decay_factor: float = 0.1
    stages: tuple["Stage", ...] = ()
    final_stage_lr_factor: float = 1.0
    final_stage_weight_decay: Optional[float] = None
    final_stage_variant: str = "binary"  # zoo.variants: the fully binary stage's quantizers
    attention_weight: float = 0.0
    output_weight: float = 0.0
    temperature: float = 1.0
    taught_label_weight: float = 1.0  # the labels' cross-entropy in taught stages (0: none)
    adam_epsilon: float = 1e-7  # Keras's default; larq-zoo's tasks set 1e-8 or 1e-5 for some
    decay_multipliers: tuple[float, ...] = ()  # "step": the rate's factor after each boundary
    binary_optimizer: str = ""  # "adam": the binary kernels get their own optimiser (QuickNet)
    binary_learning_rate: float = 0.0  # its rate at reference_batch_size
    reference: str = ""

    def __post_init__(self):
        # From a run's config.json: each stage's fields; from before stages were
        # declared, a kind ("two_step", "progressive"): the named recipe's stages.
        stages = self.stages
        if isinstance(stages, str):
            stages = get_recipe(self.name).stages if stages else ()
        object.__setattr__(self, "stages", tuple(
            stage if isinstance(stage, Stage) else Stage(**stage) for stage in stages))

    def scaled_learning_rate(self, batch_size: int) -> float:
        return self.learning_rate * batch_size / self.reference_batch_size


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a staged recipe: its directory in the run, its quantizers
    (a ``zoo.variants`` variant) and whether a stage teaches it
    (``training.distill``): the one before, or the one named ``teacher``.
    Every stage after the first starts from the one before unless ``fresh``.
    A stage that others name as their ``teacher`` is the recipe's teacher
    stage: ``train --teacher`` replaces it with a trained network."""

    name: str
    variant: str
    taught: bool = False
    teacher: str = ""  # the stage that teaches it, if not the one before
    fresh: bool = False  # starts from new weights, not from the stage before


#: Bi-Real's two-step scheme for deep nets (``--two-step`` on a single-stage
#: recipe): 1-bit activations with real weights, then fully binary from them.
TWO_STEP = (Stage("step1-binary-activations", "binary_activations"),
            Stage("step2-binary", "binary"))


def _steps(epochs: int, *boundaries: int) -> tuple[float, ...]:
    """Epoch boundaries as the fractions of the run ``decay_at`` holds."""
    return tuple(b / epochs for b in boundaries)


LARQ_ZOO_TASKS = "larq-zoo 2.4.0, larq_zoo/training/"


#: Real-to-Binary's progressive teacher-student stages (Martinez et al.,
#: methods.md): the real-valued teacher, tanh activations, sign activations
#: (real weights each), then fully binary, each taught by the one before.
REAL_TO_BINARY_STAGES = (
    Stage("stage0-real", "real"), Stage("stage1-soft", "soft_activations", taught=True),
    Stage("stage2-binary-activations", "binary_activations", taught=True),
    Stage("stage3-binary", "binary", taught=True))


# Real-to-Binary (methods.md): Adam 1e-3 at batch 256, x0.1 at epochs 40,
# 60 and 70 of 75, the final stage from 2e-4; attention matching weight 30
# and output distillation weight 3 at temperature 1 in every taught stage
# (larq-zoo's stages 1-2; its final stage uses 0 and 0.8, and a 5-epoch
# warm-up); larq-zoo's l2(1e-5) kernel regulariser (lambda = 2e-5) before
# the fully binary stage. That stage's kernels are alpha_c sign(W),
# alpha_c = mean_c |W| (zoo.variants' "magnitude_weights"): the gated
# convolutions have no per-channel scale to carry the weights' magnitudes
# into at the switch to sign(W) (training/switch.py), so with plain
# sign(W) the stage starts near chance and must re-learn the scale, which
# 75-epoch stages can and short ones cannot (on 14 px Fashion-MNIST over 2
# epochs, sign(W) fell far below the stage it started from, even at 20x the
# paper's rate, where alpha_c sign(W) kept close to it; issue 17).
# alpha_c folds into LceBconv2d's multiplier, as Bi-Real's does; no weight
# is added, so larq-zoo's layout and weights (weights="imagenet": plain
# sign(W), as larq-zoo trained them) are unchanged.
REAL_TO_BINARY = Recipe(
    name="real2bin", optimizer="adam", learning_rate=1e-3, reference_batch_size=256,
    schedule="step", decay_at=(40 / 75, 60 / 75, 70 / 75), epochs=75, batch_size=256,
    weight_decay=2e-5, weight_decay_mode="l2_kernels", stages=REAL_TO_BINARY_STAGES,
    final_stage_lr_factor=0.2, final_stage_weight_decay=0.0,
    final_stage_variant="magnitude_weights", attention_weight=30.0, output_weight=3.0,
    reference="Martinez et al., Real-to-Binary Net (ICLR 2020); larq-zoo's re-implementation",
)

#: ReActNet's stages (Liu et al., methods.md): a real-valued teacher (the
#: network without its quantizers, or ``train --teacher``), then step 1
#: (binary activations, real weights) from new weights and step 2 (fully
#: binary) from step 1, both taught by the teacher.
REACTNET_STAGES = (
    Stage("teacher-real", "real"),
    Stage("step1-binary-activations", "binary_activations", taught=True,
          teacher="teacher-real", fresh=True),
    Stage("step2-binary", "binary", taught=True, teacher="teacher-real"))


# larq-zoo's BinaryDenseNet-28 task (RECIPES below: -37 and MeliusNet-22 from it).
BINARY_DENSENET28 = Recipe(
    name="binary_densenet28", optimizer="adam", learning_rate=4e-3, adam_epsilon=1e-8,
    reference_batch_size=256, schedule="step", decay_at=_steps(120, 100, 110),
    epochs=120, batch_size=256,
    reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainBinaryDenseNet28")


RECIPES = {
    # Bi-Real Net, official PyTorch re-implementation (reaches the paper):
    # Adam 1e-3 at batch 256, linear decay to 0 over 256 epochs, batch 512,
    # label smoothing 0.1, no weight decay on the convolution kernels.
    "bireal": Recipe(
        name="bireal", optimizer="adam", learning_rate=1e-3, reference_batch_size=256,
        schedule="linear", epochs=256, batch_size=512, label_smoothing=0.1,
        reference="Liu et al., Bi-Real Net (ECCV 2018 / IJCV 2020)",
    ),
    # SiMaN, official code (CIFAR): SGD momentum 0.9, lr 0.1 at batch 256,
    # cosine to 0 after a 5-epoch linear warm-up, 400 epochs, PyTorch's
    # (coupled, L2) weight decay 5e-4 on everything but the binary kernels and
    # their scales.
    "siman": Recipe(
        name="siman", optimizer="sgd", learning_rate=0.1, reference_batch_size=256,
        schedule="cosine", epochs=400, batch_size=256, weight_decay=5e-4, warmup_epochs=5,
        weight_decay_mode="l2", reference="Lin et al., SiMaN (TPAMI 2022), CIFAR-10",
    ),
    # SiMaN on ImageNet as methods.md gives it: 150 epochs, batch 512, lr 0.1,
    # cosine, no warm-up, weight decay 1e-4 (the official run.sh shows batch
    # 256 and 5e-4 at the same lr).
    "siman_imagenet": Recipe(
        name="siman_imagenet", optimizer="sgd", learning_rate=0.1, reference_batch_size=512,
        schedule="cosine", epochs=150, batch_size=512, weight_decay=1e-4,
        weight_decay_mode="l2", reference="Lin et al., SiMaN (TPAMI 2022), ImageNet",
    ),
    # SiMaN for short runs (a few epochs): the ImageNet recipe with its rate
    # of 0.1 kept at batch 128 instead of scaled down linearly from batch 512
    # (0.025; the official run.sh uses 0.1 at batch 256). Over 2 epochs at
    # batch 128 (14 px Fashion-MNIST, issue 17) the scaled rate left SiMaN
    # below the XNOR-style baseline; 0.1 put it above. `train siman_resnet18`
    # keeps the paper's recipe; the accuracy table trains SiMaN with this one
    # (`--recipe siman_short`).
    "siman_short": Recipe(
        name="siman_short", optimizer="sgd", learning_rate=0.1, reference_batch_size=128,
        schedule="cosine", epochs=2, batch_size=128, weight_decay=1e-4,
        weight_decay_mode="l2",
        reference="Lin et al., SiMaN (TPAMI 2022), ImageNet recipe at a short budget",
    ),
    "real2bin": REAL_TO_BINARY,
    # ReActNet, the authors' code: Adam 5e-4 at batch 256, the rate decayed
    # linearly to 0 over 256 epochs in each step; PyTorch's weight decay 1e-5
    # (coupled, on the convolution kernels) in step 1, 0 in step 2; the
    # distributional loss (the student's cross-entropy against the teacher's
    # softmax, T = 1) without labels. The teacher stage trains on the labels
    # with step 1's settings (the authors took a trained ResNet-34).
    "reactnet": Recipe(
        name="reactnet", optimizer="adam", learning_rate=5e-4, reference_batch_size=256,
        schedule="linear", epochs=256, batch_size=256, weight_decay=1e-5,
        weight_decay_mode="l2_kernels", stages=REACTNET_STAGES, final_stage_weight_decay=0.0,
        output_weight=1.0, temperature=1.0, taught_label_weight=0.0,
        reference="Liu et al., ReActNet (ECCV 2020), the authors' code"),
    # Real-to-Binary for short runs (a few epochs per stage, batch 128): the
    # paper's recipe (REAL_TO_BINARY) at that budget.
    "real2bin_short": dataclasses.replace(
        REAL_TO_BINARY, name="real2bin_short", epochs=2, batch_size=128,
        reference="Martinez et al., Real-to-Binary Net (ICLR 2020), for short runs"),
    # The strong baseline: the same optimiser and schedule, two stages (binary
    # activations with real weights, then fully binary from it at 2e-4), no teacher.
    "real2bin_baseline": dataclasses.replace(
        REAL_TO_BINARY, name="real2bin_baseline", stages=TWO_STEP, final_stage_variant="binary",
        attention_weight=0.0, output_weight=0.0,
        reference="Martinez et al., Real-to-Binary Net (ICLR 2020), strong baseline"),
    # larq-zoo's own training tasks (larq_zoo/training/sota_experiments.py and
    # basic_experiments.py), value for value; sparse cross-entropy without
    # label smoothing, no weight decay beyond the models' own regularisers.
    # QuickNet, -Small, -Large: Adam 1e-2 on the binary kernels and SGD 0.1
    # (momentum 0.9) on the rest, cosine decay after 5 warm-up epochs, 600
    # epochs, batch 2048.
    "quicknet": Recipe(
        name="quicknet", optimizer="sgd", learning_rate=0.1, momentum=0.9,
        binary_optimizer="adam", binary_learning_rate=1e-2, reference_batch_size=2048,
        schedule="cosine", warmup_epochs=5, epochs=600, batch_size=2048,
        reference=f"{LARQ_ZOO_TASKS}sota_experiments.py TrainQuickNet"),
    # XNOR-Net: Adam 1e-3, batch 1200, 100 epochs, x0.5, 0.1, 0.05, ... at epochs 19-86.
    "xnornet": Recipe(
        name="xnornet", optimizer="adam", learning_rate=1e-3, reference_batch_size=1200,
        schedule="step", decay_at=_steps(100, 19, 30, 44, 53, 66, 76, 86),
        decay_multipliers=(1, 0.5, 0.1, 0.05, 0.01, 0.005, 0.001, 0.0001), epochs=100,
        batch_size=1200, reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainXNORNet"),
    # Binary AlexNet: Adam 1e-2 halved every 10 epochs, 150 epochs, batch 512.
    "binary_alexnet": Recipe(
        name="binary_alexnet", optimizer="adam", learning_rate=1e-2, reference_batch_size=512,
        schedule="step", decay_at=_steps(150, *range(10, 150, 10)), decay_factor=0.5,
        epochs=150, batch_size=512,
        reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainBinaryAlexNet"),
    # ResNetE-18: Adam 4e-3 (epsilon 1e-8), x0.3 at epochs 70, 90, 110 of 120, batch 1024.
    "binary_resnet_e18": Recipe(
        name="binary_resnet_e18", optimizer="adam", learning_rate=4e-3, adam_epsilon=1e-8,
        reference_batch_size=1024, schedule="step", decay_at=_steps(120, 70, 90, 110),
        decay_factor=0.3, epochs=120, batch_size=1024,
        reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainBinaryResNetE18"),
    # BinaryDenseNet-28: Adam 4e-3 (epsilon 1e-8), x0.1 at 100, 110 of 120, batch 256;
    # -37 the same at batch 192; -45 8e-3, x0.1 at 80, 100 of 125, batch 384.
    "binary_densenet28": BINARY_DENSENET28,
    "binary_densenet37": dataclasses.replace(
        BINARY_DENSENET28, name="binary_densenet37", reference_batch_size=192, batch_size=192,
        reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainBinaryDenseNet37"),
    "binary_densenet45": Recipe(
        name="binary_densenet45", optimizer="adam", learning_rate=8e-3, adam_epsilon=1e-8,
        reference_batch_size=384, schedule="step", decay_at=_steps(125, 80, 100),
        epochs=125, batch_size=384,
        reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainBinaryDenseNet45"),
    # MeliusNet-22: larq-zoo has no task for it; its BinaryDenseNet-28 task's values.
    "meliusnet22": dataclasses.replace(
        BINARY_DENSENET28, name="meliusnet22",
        reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainBinaryDenseNet28 (larq-zoo "
                  "publishes no MeliusNet task)"),
    # DoReFa-Net: Adam 2e-4 (epsilon 1e-5), x0.2 at 60, x0.04 at 75, then x0.1
    # every 2 epochs from 82, 90 epochs, batch 256.
    "dorefanet": Recipe(
        name="dorefanet", optimizer="adam", learning_rate=2e-4, adam_epsilon=1e-5,
        reference_batch_size=256, schedule="step", decay_at=_steps(90, 60, 75, 82, 84, 86, 88),
        decay_multipliers=(1, 0.2, 0.04, 0.004, 0.0004, 0.00004, 0.000004), epochs=90,
        batch_size=256, reference=f"{LARQ_ZOO_TASKS}basic_experiments.py TrainDoReFaNet"),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UnknownName(f"Unknown recipe {name!r}. Available: {', '.join(sorted(RECIPES))}.") from None


def chosen_recipe(model_recipe: str, chosen: Union[None, str, dict] = None) -> Recipe:
    """The recipe a run trains with: ``chosen`` (a recipe's name, as ``--recipe``
    gives it, or a resolved configuration's recipe fields), else the model's."""
    if isinstance(chosen, dict):
        return Recipe(**chosen)
    return get_recipe(chosen or model_recipe)
