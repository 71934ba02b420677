"""The networks, in larq-zoo's conventions, reached by name through a registry.

>>> from bnnzoo import zoo
>>> zoo.list_models()[:3]
['bireal101', 'bireal152', 'bireal18']
>>> model = zoo.get_model("bireal18", input_shape=(28, 28, 1), num_classes=10)
"""

import bnnzoo  # (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

bnnzoo.one_import_path(__name__)

from .registry import get_model, list_models, model_entry, register_model
from .input_side import check_input_side, smallest_input_side
from .bireal import bireal18  # noqa: F401  (registers the models)
from .bireal_deep import bireal34, bireal50, bireal101, bireal152
from .real2bin import real2bin, real2bin_baseline
from .reactnet import reactnet_a, reactnet_resnet18
from .real_twins import resnet18, resnet34, resnet50, resnet101, resnet152
from .siman import siman_resnet18, siman_resnet34
from .siman_cifar import siman_resnet18_cifar, siman_resnet20, siman_vgg_small
from .xnor import xnor_resnet18
from .larq_zoo_models import (binary_alexnet, binary_densenet28, binary_densenet37,
                              binary_densenet45, binary_resnet_e18, dorefanet, meliusnet22,
                              quicknet, quicknet_large, quicknet_small, xnornet)

__all__ = ["get_model", "list_models", "model_entry", "register_model", "check_input_side",
           "smallest_input_side",
           "bireal18", "bireal34", "bireal50", "bireal101", "bireal152",
           "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "xnor_resnet18",
           "siman_resnet18", "siman_resnet34", "siman_resnet20", "siman_resnet18_cifar",
           "siman_vgg_small", "real2bin", "real2bin_baseline", "reactnet_a", "reactnet_resnet18",
           "binary_alexnet", "binary_densenet28", "binary_densenet37", "binary_densenet45",
           "binary_resnet_e18", "dorefanet", "meliusnet22", "quicknet", "quicknet_large",
           "quicknet_small", "xnornet"]
