"""Multiply-accumulates of a signature, counted from the ``.tflite`` file's own operators (no TensorFlow).

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
from math import prod


def _schema():
    for module in ("ai_edge_litert.schema_py_generated", "tflite_runtime.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise ImportError("no TFLite schema module found (pip install ai-edge-litert)")


def signature_macs(model_bytes: bytes, signature_key: str, tensor_shape: Callable[[int], list[int]]) -> int:
    """MACs of one call of signature ``signature_key``.

    Args:
        model_bytes: the ``.tflite`` file's bytes (trailing metadata is ignored).
        signature_key: e.g. ``"encode"`` or ``"decode_step"``.
        tensor_shape: tensor index (in the signature's subgraph) → its allocated shape.

    Raises:
        KeyError: no such signature. ImportError: no TFLite schema module installed.
    """
    s = _schema()
    op = s.BuiltinOperator
    model = s.Model.GetRootAs(model_bytes, 0)
    index = None
    for i in range(model.SignatureDefsLength()):
        sd = model.SignatureDefs(i)
        if sd.SignatureKey().decode() == signature_key:
            index = sd.SubgraphIndex()
    if index is None:
        raise KeyError(f"no signature {signature_key!r} in the model")
    graph = model.Subgraphs(index)
    total = 0
    for k in range(graph.OperatorsLength()):
        node = graph.Operators(k)
        opcode = model.OperatorCodes(node.OpcodeIndex())
        code = max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())
        ins = [int(j) for j in node.InputsAsNumpy()]
        out = list(tensor_shape(int(node.OutputsAsNumpy()[0])))
        if code == op.FULLY_CONNECTED:
            w = tensor_shape(ins[1])  # (out, in)
            total += prod(out) * w[-1]
        elif code == op.CONV_2D:
            w = tensor_shape(ins[1])  # (Co, kh, kw, Ci)
            total += prod(out) * w[1] * w[2] * w[3]
        elif code == op.DEPTHWISE_CONV_2D:
            w = tensor_shape(ins[1])  # (1, kh, kw, C)
            total += prod(out) * w[1] * w[2]
        elif code == op.BATCH_MATMUL:
            total += prod(out) * tensor_shape(ins[0])[-1]
        elif code == op.MUL:
            total += prod(out)
    return total
