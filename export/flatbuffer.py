r"""Reading a TFLite / LCE flatbuffer: its operators, binary convolutions and MACs.

Every operator's ``opcodeIndex`` points into the model's ``operatorCodes``;
LCE's operators are custom ones (``customCode`` = ``LceBconv2d``,
``LceQuantize``, ...), the rest are TFLite builtins. MACs per image are read
from the tensors' shapes, as they run on the device:

* ``CONV_2D`` (filter ``[c_out, k_h, k_w, c_in]``): \(H_o W_o \, c_{out} k_h k_w c_{in}\)
* ``DEPTHWISE_CONV_2D`` (filter ``[1, k_h, k_w, c_out]``): \(H_o W_o \, c_{out} k_h k_w\)
* ``FULLY_CONNECTED`` (weights ``[n_out, n_in]``): \(n_{out} n_{in}\) per output row
* ``LceBconv2d`` (filter bitpacked ``[c_out, k_h, k_w, \lceil c_{in}/32 \rceil]``,
  \(c_{in}\) in its options): \(H_o W_o \, c_{out} k_h k_w c_{in}\), counted as binary.
"""

import collections
import contextlib
import dataclasses
from pathlib import Path
from typing import Optional

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers
from tensorflow.lite.python import schema_py_generated as schema

from bnnzoo import checksums
from bnnzoo.errors import UserError

BCONV = "LceBconv2d"
REAL_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                  if not name.startswith("_")}
_TENSOR_TYPES = {code: name for name, code in vars(schema.TensorType).items()
                 if not name.startswith("_")}


class FlatbufferError(UserError):
    """Bytes that are not a readable TFLite flatbuffer."""


@dataclasses.dataclass(frozen=True)
class Operator:
    """One operator of the flatbuffer's main graph."""

    name: str                         # builtin name (CONV_2D) or LCE custom code (LceBconv2d)
    input_names: tuple[str, ...]      # names of its input tensors (TensorFlow op paths)
    output_names: tuple[str, ...]
    output_shape: tuple[int, ...]
    weight_shape: Optional[tuple[int, ...]]  # its constant filter / weights, if any
    options: dict                     # LCE's custom options (flexbuffer), else {}
    macs: int                         # multiply-accumulates per image (0 if none)
    output_type: str = "FLOAT32"      # element type of its (first) output: FLOAT32, INT8, ...
    weight_type: Optional[str] = None  # element type of its constant weights, if any

    @property
    def weighted(self) -> bool:
        """A real-valued convolution or dense operator (binary ones are ``binary``)."""
        return self.name in REAL_WEIGHTED

    @property
    def binary(self) -> bool:
        return self.name == BCONV

    @property
    def signature(self) -> tuple:
        """(k_h, k_w, c_in, c_out, stride_h, stride_w) of a convolution."""
        if self.name == BCONV:
            c_out, k_h, k_w, _ = self.weight_shape
            return (k_h, k_w, self.options["channels_in"], c_out,
                    self.options["stride_height"], self.options["stride_width"])
        raise ValueError(f"{self.name} has no binary-convolution signature")


def _model(buf: bytes):
    try:
        if len(buf) < 8 or buf[4:8] != b"TFL3":
            raise ValueError("no TFL3 identifier")
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
        if not model.subgraphs:
            raise ValueError("no subgraph")
        return model
    except Exception as err:  # noqa: BLE001  (any decoding failure means a bad file)
        raise FlatbufferError(f"Not a TFLite flatbuffer ({err}).") from None


@contextlib.contextmanager
def _damaged():
    """Decoded, a damaged file can still hold indices, names or options that
    lead nowhere: those errors too are a :class:`FlatbufferError`."""
    try:
        yield
    except FlatbufferError:
        raise
    except Exception as err:  # noqa: BLE001
        raise FlatbufferError(f"Not a TFLite flatbuffer ({type(err).__name__}: {err}).") from None


def _opcode_name(code) -> str:
    if code.customCode:
        return code.customCode.decode()
    return _BUILTIN_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")


def _macs(name: str, output_shape, weight_shape, options) -> int:
    if weight_shape is None or not output_shape:
        return 0
    positions = int(np.prod(output_shape[:-1]))  # batch 1: H_o * W_o (rows for dense)
    if name in ("CONV_2D", BCONV):
        c_out, k_h, k_w, c_in = weight_shape
        if name == BCONV:
            c_in = options["channels_in"]
        return positions * c_out * k_h * k_w * c_in
    if name == "DEPTHWISE_CONV_2D":
        _, k_h, k_w, c_out = weight_shape
        return positions * c_out * k_h * k_w
    if name == "FULLY_CONNECTED":
        n_out, n_in = weight_shape
        return positions * n_out * n_in
    return 0


def operators(buf: bytes) -> list[Operator]:
    """The operators of the main subgraph, in execution order."""
    model = _model(buf)
    graph = model.subgraphs[0]
    tensors = graph.tensors

    def names(indices):
        return tuple(tensors[i].name.decode() for i in (indices if indices is not None else [])
                     if i >= 0)

    with _damaged():
        found = []
        for op in graph.operators:
            name = _opcode_name(model.operatorCodes[op.opcodeIndex])
            options = {}
            if op.customOptions is not None and len(op.customOptions):
                try:
                    options = flexbuffers.Loads(bytes(op.customOptions))
                except Exception:  # noqa: BLE001  (options of an unknown custom op)
                    options = {}
            inputs = [i for i in (op.inputs if op.inputs is not None else []) if i >= 0]
            # The weights are the second input of a convolution / dense operator.
            weight_shape = weight_type = None
            if len(inputs) > 1 and name in (*REAL_WEIGHTED, BCONV):
                weight_shape = tuple(int(d) for d in tensors[inputs[1]].shape)
                weight_type = _TENSOR_TYPES.get(tensors[inputs[1]].type, "UNKNOWN")
            out = tensors[op.outputs[0]]
            output_shape = tuple(int(d) for d in out.shape) if out.shape is not None else ()
            found.append(Operator(
                name=name, input_names=names(op.inputs), output_names=names(op.outputs),
                output_shape=output_shape, weight_shape=weight_shape, options=options,
                macs=_macs(name, output_shape, weight_shape, options),
                output_type=_TENSOR_TYPES.get(out.type, "UNKNOWN"), weight_type=weight_type,
            ))
    return found


def operator_histogram(buf: bytes) -> dict[str, int]:
    """How many times each operator occurs, most frequent first."""
    counts = collections.Counter(op.name for op in operators(buf))
    return dict(counts.most_common())


def precision_report(buf: bytes) -> dict:
    """Which operators compute in int8 and which in float (by their output's
    element type), and the real-valued convolution / dense operators whose
    weights are still float."""
    ops = operators(buf)
    int8 = collections.Counter(op.name for op in ops if op.output_type == "INT8")
    floating = collections.Counter(op.name for op in ops if op.output_type == "FLOAT32")
    return {
        "int8_operators": sum(int8.values()),
        "float_operators": sum(floating.values()),
        "int8": dict(int8.most_common()),
        "float": dict(floating.most_common()),
        "float_weights": [op.output_names[0] for op in ops
                          if op.weighted and op.weight_type != "INT8"],
    }


def io_types(buf: bytes) -> tuple[list[str], list[str]]:
    """Element types (``FLOAT32``, ``INT8``...) of the model's inputs and outputs."""
    graph = _model(buf).subgraphs[0]
    kind = lambda i: _TENSOR_TYPES.get(graph.tensors[i].type, "UNKNOWN")  # noqa: E731
    with _damaged():
        return [kind(i) for i in graph.inputs], [kind(i) for i in graph.outputs]


def input_shape(buf: bytes) -> tuple[int, ...]:
    """Shape of the model's (first) input without the batch axis, e.g. ``(28, 28, 1)``."""
    graph = _model(buf).subgraphs[0]
    with _damaged():
        return tuple(int(d) for d in graph.tensors[graph.inputs[0]].shape[1:])


def output_shape(buf: bytes) -> tuple[int, ...]:
    """Shape of the model's (first) output without the batch axis, e.g. ``(10,)``."""
    graph = _model(buf).subgraphs[0]
    with _damaged():
        return tuple(int(d) for d in graph.tensors[graph.outputs[0]].shape[1:])


def read_flatbuffer(path) -> bytes:
    """The bytes of a flatbuffer file, checked to be one (``FlatbufferError``,
    a ``ValueError``, on a damaged file; ``UserError`` if absent) and
    to be the bytes recorded when it was written (``bnnzoo.checksums``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    buf = path.read_bytes()
    checksums.verify(path, buf, what="a flatbuffer")
    operators(buf)
    return buf


def with_scaled_bconv_output(buf: bytes, index: int, multiplier: float, bias: float) -> bytes:
    """``buf`` with the ``index``-th ``LceBconv2d``'s folded output multiplier and
    bias (its inputs 2 and 3) scaled: a wrongly folded scale, or (both 0) the
    binary layer dropped from its residual block. What the parity check must
    catch (tests/test_export_cli.py, benchmarks/parity_noise_floor.py)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    graph = model.subgraphs[0]
    op = [op for op in graph.operators
          if model.operatorCodes[op.opcodeIndex].customCode == BCONV.encode()][index]
    for position, factor in ((2, multiplier), (3, bias)):
        data = model.buffers[graph.tensors[op.inputs[position]].buffer]
        values = np.frombuffer(bytes(bytearray(data.data)), np.float32) * np.float32(factor)
        data.data = np.frombuffer(values.astype(np.float32).tobytes(), np.uint8)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
