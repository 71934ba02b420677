"""Deployment: LCE flatbuffers, the proof that they are bitpacked and faithful,
and benchmarks on the host and on devices. Export reads runs (``bnnzoo.runs``),
never ``bnnzoo.training``; a flatbuffer's accuracy is ``bnnzoo.evaluation``.

>>> from bnnzoo import export
>>> path, report = export.export_model("runs/bireal18-...", target="arm64")
>>> export.compare_with_keras(path)["lce_top1"]
"""

import bnnzoo  # (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

bnnzoo.one_import_path(__name__)

from .convert import TARGETS, ConversionError, export_flatbuffer
from .flatbuffer import FlatbufferError, operator_histogram, operators, read_flatbuffer
from .footprint import Footprint, footprint
from .parity import parity_report, predict_flatbuffer
from .pipeline import compare_with_keras, export_model, report_path
from .report import ExportError, check_report, export_report, format_report

__all__ = ["TARGETS", "ConversionError", "ExportError", "FlatbufferError", "Footprint", "check_report",
           "compare_with_keras", "export_flatbuffer", "export_model", "export_report",
           "footprint", "format_report", "operator_histogram", "operators", "parity_report",
           "predict_flatbuffer", "read_flatbuffer", "report_path"]
