"""Larq quantizers for the papers' binarization methods.

Each quantizer is registered with Keras, so it can be named by string in any
larq layer (``input_quantizer="bireal_approx_sign"``) and survives
``model.save`` / ``load_model``.
"""

import bnnzoo  # (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

bnnzoo.one_import_path(__name__)

from .border_corrected_conv import BorderCorrectedQuantConv2D
from .bireal import (BiRealApproxSign, BiRealHardTanh, BiRealLeakyClip,
                     BiRealMagnitudeAwareSign, hard_tanh, leaky_clip, magnitude_aware_sign)
from .real2bin import Real2BinTanh
from .reactnet import ReActNetWeightSign, RPReLU, RSign, reactnet_weight_sign
from .scaled_conv import ScaledQuantConv2D
from .siman import (SiManClip, SiManClipSchedule, SiManMagnitude, SiManSign, magnitude_encoding,
                    siman_magnitude, siman_sign)
from .xnor import XNORScaledSign
from larq.quantizers import approx_sign

__all__ = [
    "BiRealApproxSign",
    "BiRealHardTanh",
    "BiRealLeakyClip",
    "BiRealMagnitudeAwareSign",
    "BorderCorrectedQuantConv2D",
    "RPReLU",
    "RSign",
    "ReActNetWeightSign",
    "Real2BinTanh",
    "ScaledQuantConv2D",
    "SiManClip",
    "SiManClipSchedule",
    "SiManMagnitude",
    "SiManSign",
    "XNORScaledSign",
    "approx_sign",
    "hard_tanh",
    "leaky_clip",
    "magnitude_aware_sign",
    "magnitude_encoding",
    "reactnet_weight_sign",
    "siman_magnitude",
    "siman_sign",
]
