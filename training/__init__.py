"""Training runs: recipes and the training loop with resumable checkpoints.

Run directories, and reading trained models back from them, are
``bnnzoo.runs``; evaluation is ``bnnzoo.evaluation``.
"""

import bnnzoo  # (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

bnnzoo.one_import_path(__name__)

from bnnzoo.zoo.recipes import RECIPES, Recipe, get_recipe
from .train import TrainConfig, train

__all__ = ["RECIPES", "Recipe", "TrainConfig", "get_recipe", "train"]
