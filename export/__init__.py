"""Deployment: what a model costs on a device, and (next) its LCE flatbuffer."""

import bnnzoo  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

from .footprint import Footprint, footprint

__all__ = ["Footprint", "footprint"]
