r"""The proof that an export is what it claims: bitpacked, small, and faithful.

For one Keras model and its flatbuffer the report holds

* the operator histogram of the flatbuffer;
* every Keras layer whose input and kernel are both 1-bit, matched one-to-one to
  an ``LceBconv2d`` (by the layer's name in the operator's tensor names, then by
  kernel size, channels and stride); an unmatched layer did not become bitpacked;
* the share of MACs that run as binary operations, read from the flatbuffer:
  \( \text{MAC}_{bin} / (\text{MAC}_{bin} + \text{MAC}_{float}) \);
* the file's size against the float32 size of the network (\(4 \times\) params)
  and its 1-bit budget (binary params / 8 + other params \(\times\) 4 bytes);
* the operators computing in int8 and in float (by their output's element
  type); with int8 edges, every real-valued convolution and dense operator
  must have int8 weights, and no float MUL / ADD may be left between int8
  layers (a BatchNorm the converter could not fold: larq #907);
* parity with the Keras model on real test images, or synthetic inputs when
  no matching dataset is at hand (:mod:`.parity`), judged against the Keras
  model's own rounding noise (:mod:`.rounding_noise`).

:func:`check_report` turns a failed proof into :class:`ExportError`.
"""

from typing import Optional
from collections.abc import Sequence

import tensorflow as tf

from bnnzoo.errors import UserError
from bnnzoo.zoo.binary_layers import binary_operations

from . import flatbuffer as fb
from .footprint import footprint

class ExportError(UserError):
    """An export that is not bitpacked where it should be, or not faithful."""


def _layer_signature(layer) -> tuple:
    k_h, k_w, c_in, c_out = (int(d) for d in layer.kernel.shape)
    stride_h, stride_w = layer.strides
    return (k_h, k_w, c_in, c_out, int(stride_h), int(stride_w))


def match_binary_layers(layers: Sequence, ops: Sequence[fb.Operator]) -> list[str]:
    """Names of the binary ``layers`` with no ``LceBconv2d`` of their own in ``ops``."""
    free = [op for op in ops if op.binary]
    unmatched = []
    for layer in layers:  # 1. the layer's name in the operator's tensor names
        needle = f"/{layer.name}/"
        op = next((op for op in free if any(needle in n for n in op.input_names + op.output_names)),
                  None)
        if op is None:
            unmatched.append(layer)
        else:
            free.remove(op)
    missing = []
    for layer in unmatched:  # 2. the same convolution shape
        if getattr(layer, "kernel", None) is None or len(layer.kernel.shape) != 4:
            missing.append(layer.name)
            continue
        op = next((op for op in free if op.signature == _layer_signature(layer)), None)
        if op is None:
            missing.append(layer.name)
        else:
            free.remove(op)
    return missing


def export_report(model: tf.keras.Model, buf: bytes) -> dict:
    """Operators, bitpacking, MAC share and sizes of ``buf`` exported from ``model``."""
    ops = fb.operators(buf)
    layers = binary_operations(model)
    missing = match_binary_layers(layers, ops)
    binary_macs = sum(op.macs for op in ops if op.binary)
    float_macs = sum(op.macs for op in ops if not op.binary)
    fp = footprint(model)
    inputs, outputs = fb.io_types(buf)
    return {
        "operators": fb.operator_histogram(buf),
        "binary_convolutions": {
            "keras": len(layers),
            "lce_bconv2d": sum(op.binary for op in ops),
            "not_bitpacked": missing,
        },
        "macs": {
            "binary": binary_macs,
            "float": float_macs,
            "binary_share": binary_macs / max(binary_macs + float_macs, 1),
        },
        "size": {
            "flatbuffer_bytes": len(buf),
            "float32_bytes": fp.size_float32_bytes,
            "one_bit_budget_bytes": fp.size_1bit_bytes,
            "vs_float32": len(buf) / fp.size_float32_bytes,
            "vs_one_bit_budget": len(buf) / fp.size_1bit_bytes,
        },
        "io_types": {"input": inputs, "output": outputs},
        "precision": fb.precision_report(buf),
    }


def check_report(report: dict, min_agreement: Optional[float] = None) -> None:
    """Raise :class:`ExportError` naming what failed.

    Parity fails when the flatbuffer differs from the Keras model beyond the
    model's own rounding noise (``report["parity"]["noise_floor"]``), and, only
    if ``min_agreement`` is given, when its top-1 agreement is below it.
    """
    problems = []
    precision = report.get("precision")
    if report.get("int8_edges") and precision is not None:
        if precision["float_weights"]:
            problems.append(
                f"{len(precision['float_weights'])} real-valued convolution / dense operator(s) "
                f"kept float weights with --int8: {', '.join(precision['float_weights'])}.")
        unfused = {name: n for name, n in precision["float"].items() if name in UNFUSED}
        if unfused:
            problems.append(
                "Float arithmetic left between int8 layers with --int8: "
                + ", ".join(f"{n} {name}" for name, n in unfused.items())
                + " (arithmetic the converter could not fold into an int8 operator: a BatchNorm "
                "or scale it left unfolded, larq #907, or a quantizer's own arithmetic, such as "
                "SiMaN's centred sign subtracting each sample's mean).")
    bconv = report["binary_convolutions"]
    missing = bconv["not_bitpacked"]
    if not missing and bconv["lce_bconv2d"] != bconv["keras"]:
        problems.append(f"The flatbuffer has {bconv['lce_bconv2d']} LceBconv2d for "
                        f"{bconv['keras']} binary layers in Keras.")
    if missing:
        problems.append(
            f"{len(missing)} binary layer(s) did not become LceBconv2d: {', '.join(missing)}. "
            "LCE bitpacks 2D convolutions whose input is a sign it recognises and whose "
            "kernel is ±1 (times a per-channel scale); other 1-bit layers run in float on "
            "the device.")
    parity = report.get("parity")
    if parity is not None:
        floor = parity["noise_floor"]
        if not floor["faithful"]:
            judged = ", ".join(
                f"{WHAT[key]} on {floor['flatbuffer'][key]} (a faithful export: at most "
                f"{floor['allowed'][key]}; the Keras model under rounding-size jitter: "
                f"{', '.join(map(str, floor['jitter'][key]))})" for key in floor["allowed"])
            problems.append(
                f"The flatbuffer differs from the Keras model beyond the model's own rounding "
                f"noise on {parity['images']} {parity.get('inputs', 'test images')}: {judged}. "
                "Rounding cannot do this; a dropped layer or a wrongly folded scale can.")
        if min_agreement is not None and parity["top1_agreement"] < min_agreement:
            problems.append(
                f"The flatbuffer's top-1 agrees with the Keras model's on only "
                f"{100 * parity['top1_agreement']:.1f} % of {parity['images']} images "
                f"(--min-agreement {100 * min_agreement:.1f} %; the Keras model agrees with its "
                f"jittered copies on {100 * parity['keras_noise_floor_agreement']:.1f} %).")
    if problems:
        raise ExportError(" ".join(problems))


WHAT = {"top1": "top-1 changed", "moved": "outputs moved"}
UNFUSED = ("MUL", "ADD", "SUB", "DIV")


def format_report(report: dict) -> str:
    """The report as the table ``cli.py export`` prints."""
    size, macs, bconv = report["size"], report["macs"], report["binary_convolutions"]
    lines = [f"{'operator':<24} {'count':>6}"]
    lines += [f"{name:<24} {count:>6}" for name, count in report["operators"].items()]
    lines += [
        "",
        f"binary convolutions     {bconv['lce_bconv2d']} LceBconv2d for {bconv['keras']} in Keras"
        + (f"; NOT bitpacked: {', '.join(bconv['not_bitpacked'])}" if bconv["not_bitpacked"] else ""),
        *([f"binary dense layers     {report['binary_dense']['as_lce_bconv2d']} of "
           f"{report['binary_dense']['keras']} as 1x1 LceBconv2d"]
          if report.get("binary_dense", {}).get("keras") else []),
        f"binary MACs             {100 * macs['binary_share']:.2f} % "
        f"({macs['binary']:,} binary, {macs['float']:,} float per image)",
        f"flatbuffer size         {size['flatbuffer_bytes']:,} bytes = "
        f"{size['vs_float32']:.3f}x float32 ({size['float32_bytes']:,}), "
        f"{size['vs_one_bit_budget']:.3f}x 1-bit budget ({size['one_bit_budget_bytes']:,})",
        f"input / output          {', '.join(report['io_types']['input'])} / "
        f"{', '.join(report['io_types']['output'])}",
    ]
    precision = report.get("precision")
    if precision is not None:
        lines.append(
            f"int8 / float operators  {precision['int8_operators']} int8, "
            f"{precision['float_operators']} float"
            + (f" ({', '.join(f'{n} {k}' for k, n in precision['float'].items())})"
               if precision["float"] else "")
            + (f"; float weights: {len(precision['float_weights'])}"
               if precision["float_weights"] else ""))
    parity = report.get("parity")
    if parity is not None:
        floor = parity["noise_floor"]
        lines.append(
            f"{'parity (' + str(parity['images']) + ' images)':<24} "
            f"{parity.get('inputs', 'test images')}: top-1 agreement "
            f"{100 * parity['top1_agreement']:.2f} %, largest |output difference| "
            f"{parity['max_abs_output_diff']:.2e}")
        lines += [f"{'':<24} {WHAT[key]} on {floor['flatbuffer'][key]} images, at most "
                  f"{floor['allowed'][key]} by the Keras model's rounding noise (jitter: "
                  f"{', '.join(map(str, floor['jitter'][key]))}): "
                  f"{'passed' if floor['flatbuffer'][key] <= floor['allowed'][key] else 'failed'}"
                  for key in floor["allowed"]]
    return "\n".join(lines)
