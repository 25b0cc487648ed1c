"""A ``.tflite`` file's own operators, read from the flatbuffer (no TensorFlow): the
multiply-accumulates of a signature, split by operator kind and into integer and float
arithmetic (:func:`signature_macs_by_op`, :func:`by_arithmetic`), and every operator's type,
output names and weight type (:func:`operators`).

Reads the flatbuffer with the TFLite schema that ships with the interpreter package
(``ai_edge_litert``, else ``tflite_runtime``/``tensorflow``). Counted: ``FULLY_CONNECTED``,
``CONV_2D``, ``DEPTHWISE_CONV_2D`` and ``BATCH_MATMUL`` (one MAC per weight use), and
element-wise ``MUL`` (one per output element: soft attention's ``α_i · a_i`` is one).

Shapes come from an interpreter allocated for the batch size of interest
(:meth:`edgecap.runtime.interpreter.Signature.tensor_shape`): a dynamic dimension in the file
(``-1``) may stand for B or for B × L after a reshape, which only the allocated tensors tell.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from math import prod


def _schema():
    for module in (
        "ai_edge_litert.schema_py_generated",
        "tflite_runtime.schema_py_generated",
        "tensorflow.lite.python.schema_py_generated",
    ):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise ImportError("no TFLite schema module found (pip install ai-edge-litert)")


def model_object(flatbuffer: bytes):
    """The flatbuffer as the schema's object API (``ModelT``), to edit and :func:`pack_model` again.

    Raises:
        ImportError: no TFLite schema module installed.
    """
    return _schema().ModelT.InitFromPackedBuf(flatbuffer, 0)


def pack_model(model, size_hint: int = 0) -> bytes:
    """A ``ModelT`` written back as a ``.tflite`` flatbuffer (``TFL3``); ``size_hint``: about its bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _type_names(s) -> dict[int, str]:
    """TFLite tensor type code → name, e.g. ``9 → "INT8"``."""
    return {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}


def _builtin_code(model, node) -> int:
    opcode = model.OperatorCodes(node.OpcodeIndex())
    return max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())


@dataclass(frozen=True)
class Operator:
    """One operator of a ``.tflite`` file.

    Attributes:
        subgraph: index of its subgraph (one per signature).
        name: builtin operator name, e.g. ``"CONV_2D"``.
        outputs: its output tensors' names (the converter names them after the Keras layers).
        weight_type: element type of its second input, the weights of a convolution or fully
            connected layer (e.g. ``"INT8"``, ``"FLOAT32"``), ``""`` without one.
    """

    subgraph: int
    name: str
    outputs: tuple[str, ...]
    weight_type: str


def operators(model_bytes: bytes) -> list[Operator]:
    """Every operator of every subgraph of a ``.tflite`` flatbuffer, in order.

    Raises:
        ImportError: no TFLite schema module installed.
    """
    s = _schema()
    op_names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    type_names = _type_names(s)
    model = s.Model.GetRootAs(model_bytes, 0)
    out = []
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for k in range(graph.OperatorsLength()):
            node = graph.Operators(k)
            ins = [int(j) for j in node.InputsAsNumpy()] if node.InputsLength() else []
            weight = type_names.get(graph.Tensors(ins[1]).Type(), "") if len(ins) > 1 and ins[1] >= 0 else ""
            names = tuple(graph.Tensors(int(j)).Name().decode() for j in node.OutputsAsNumpy())
            out.append(Operator(g, op_names.get(_builtin_code(model, node), "CUSTOM"), names, weight))
    return out


INTEGER_TYPES = ("INT8", "UINT8", "INT16")
OP_KINDS = ("fc", "conv1x1", "conv", "depthwise", "other")  #: operator kinds of :func:`signature_macs_by_op`


def signature_macs_by_op(
    model_bytes: bytes, signature_key: str, tensor_shape: Callable[[int], list[int]]
) -> dict[str, int]:
    """MACs of one call of signature ``signature_key``, split by arithmetic and operator kind.

    Keys are ``"<arithmetic>/<kind>"``: arithmetic ``"int8"`` when an operator's input or
    weights are integer (full-integer ops, and the hybrid kernels of dynamic-range files), else
    ``"float"``; kind ``"fc"`` (FULLY_CONNECTED, BATCH_MATMUL), ``"conv1x1"``, ``"conv"``
    (CONV_2D with a larger kernel), ``"depthwise"`` (DEPTHWISE_CONV_2D) or ``"other"`` (MUL).

    Args:
        model_bytes: the ``.tflite`` file's bytes (trailing metadata is ignored).
        signature_key: e.g. ``"encode"`` or ``"decode_step"``.
        tensor_shape: tensor index (in the signature's subgraph) → its allocated shape.

    Returns:
        ``{"int8/fc": MACs, ..., "float/other": MACs}``, every key present.

    Raises:
        KeyError: no such signature. ImportError: no TFLite schema module installed.
    """
    s = _schema()
    model = s.Model.GetRootAs(model_bytes, 0)
    index = None
    for i in range(model.SignatureDefsLength()):
        sd = model.SignatureDefs(i)
        if sd.SignatureKey().decode() == signature_key:
            index = sd.SubgraphIndex()
    if index is None:
        raise KeyError(f"no signature {signature_key!r} in the model")
    return subgraph_macs_by_op(model_bytes, index, tensor_shape)


def subgraph_macs_by_op(model_bytes: bytes, index: int, tensor_shape: Callable[[int], list[int]]) -> dict[str, int]:
    """:func:`signature_macs_by_op` for subgraph ``index`` (a file without signatures, such as a
    tagger, has its graph at 0).

    Raises:
        IndexError: no such subgraph. ImportError: no TFLite schema module installed.
    """
    s = _schema()
    op = s.BuiltinOperator
    type_names = _type_names(s)
    model = s.Model.GetRootAs(model_bytes, 0)
    if not 0 <= index < model.SubgraphsLength():
        raise IndexError(f"no subgraph {index} in the model")
    graph = model.Subgraphs(index)
    total = {f"{a}/{k}": 0 for a in ("int8", "float") for k in OP_KINDS}
    for k in range(graph.OperatorsLength()):
        node = graph.Operators(k)
        code = _builtin_code(model, node)
        ins = [int(j) for j in node.InputsAsNumpy()]
        out = list(tensor_shape(int(node.OutputsAsNumpy()[0])))
        if code == op.FULLY_CONNECTED:
            w = tensor_shape(ins[1])  # (out, in)
            kind, macs = "fc", prod(out) * w[-1]
        elif code == op.CONV_2D:
            w = tensor_shape(ins[1])  # (Co, kh, kw, Ci)
            kind, macs = "conv1x1" if w[1] == w[2] == 1 else "conv", prod(out) * w[1] * w[2] * w[3]
        elif code == op.DEPTHWISE_CONV_2D:
            w = tensor_shape(ins[1])  # (1, kh, kw, C)
            kind, macs = "depthwise", prod(out) * w[1] * w[2]
        elif code == op.BATCH_MATMUL:
            kind, macs = "fc", prod(out) * tensor_shape(ins[0])[-1]
        elif code == op.MUL:
            kind, macs = "other", prod(out)
        else:
            continue
        types = {type_names.get(graph.Tensors(j).Type(), "") for j in ins[:2] if j >= 0}
        total[f"{'int8' if types & set(INTEGER_TYPES) else 'float'}/{kind}"] += macs
    return total


def by_arithmetic(by_op: dict[str, int]) -> dict[str, int]:
    """``{"int8": MACs, "float": MACs}`` from MACs by operator kind (:func:`signature_macs_by_op`)."""
    return {a: sum(v for k, v in by_op.items() if k.startswith(a + "/")) for a in ("int8", "float")}
