"""Training runs: recipes, the training loop with resumable checkpoints, evaluation."""

import bnnzoo  # (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

bnnzoo.one_import_path(__name__)

from .evaluate import evaluate, evaluate_model
from .recipes import RECIPES, Recipe, get_recipe
from .runs import RunError, latest_run, resolve_run
from .train import ModelSource, TrainConfig, load_source, load_trained_model, train

__all__ = ["ModelSource", "load_source", "RECIPES", "Recipe", "RunError", "TrainConfig", "evaluate", "evaluate_model",
           "get_recipe", "latest_run", "load_trained_model", "resolve_run", "train"]
