"""Rewrites of a converted int8 flatbuffer so that it computes the same on every TFLite kernel set.

Two integer operators that the converter emits do not run the same everywhere
(``docs/platforms.md#reference-kernels``):

- ``SUM`` over int8: LiteRT's *reference* kernel (``OpResolverType.BUILTIN_REF``, also in
  ``tflite-runtime`` 2.14) returns wrong values when the input and output scales differ — in
  our decoders, the context vector ``z_t = Σ_i α_ti a_i`` (Xu et al. 2015, eq. 6) comes out
  as zeros, so the reference kernels caption without attention. :func:`rewrite` replaces each
  such ``SUM`` by an identity ``RESHAPE`` that declares the input scale ``N`` times larger (N:
  the number of summed elements) and a ``MEAN``, whose kernels are right everywhere:
  ``mean(N·s·(q − z)) = s·Σ(q − z)``, the same integers as an exact ``SUM``.
- ``LOG`` over int8 (operator version 2), and an int8 ``SUB`` whose output rescale is ≥ 1:
  ``tflite-runtime`` 2.14 (the only runtime with wheels for 32-bit Raspberry Pi OS) has only
  the float ``LOG`` and refuses the file, and aborts the process preparing such a ``SUB``.
  Each is replaced by ``DEQUANTIZE → the float32 operator → QUANTIZE``.

The rewrite reads and writes the flatbuffer with the TFLite schema's object API (no
TensorFlow needed); metadata appended after the flatbuffer is not touched here
(:func:`edgecap.runtime.metadata.pack` writes it again).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from math import prod

import numpy as np

from edgecap.runtime.ops import _schema, model_object, pack_model

QUANTIZED = ("INT8", "UINT8")


@dataclass
class RewriteReport:
    """What :func:`rewrite` changed.

    Attributes:
        sums: int8 ``SUM`` operators replaced by ``RESHAPE`` + ``MEAN``, as ``"subgraph:op name"``.
        float_ops: int8 operators computed in float32 instead (``LOG``; ``SUB`` with an output
            rescale ≥ 1), as ``"subgraph:output name"``.
        skipped: operators left as they were, with the reason.
    """

    sums: list[str]
    float_ops: list[str]
    skipped: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.sums or self.float_ops)


def _opcode_index(model, s, code: int, version: int) -> int:
    """Index of builtin ``code`` at ``version`` in the model's operator codes (added if absent)."""
    for i, oc in enumerate(model.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code and oc.version == version:
            return i
    oc = s.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, s.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    oc.version = version
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _new_tensor(model, s, graph, like, name: str, dtype=None, scale=None) -> int:
    """A tensor shaped as ``like`` (no data), optionally of another type or input scale."""
    t = copy.deepcopy(like)
    t.name = name.encode()
    buffer = s.BufferT()
    model.buffers.append(buffer)
    t.buffer = len(model.buffers) - 1
    if dtype is not None:
        t.type = dtype
        if dtype == s.TensorType.FLOAT32:
            t.quantization = None
    if scale is not None:
        t.quantization.scale = np.asarray(scale, np.float32)
    graph.tensors.append(t)
    return len(graph.tensors) - 1


def _drop_unused_opcodes(model) -> None:
    """Remove operator codes no operator uses: an interpreter resolves every listed code, so a
    leftover ``LOG`` version 2 would still be refused by a runtime without it."""
    used = sorted({op.opcodeIndex for graph in model.subgraphs for op in graph.operators})
    new_index = {old: new for new, old in enumerate(used)}
    model.operatorCodes = [model.operatorCodes[i] for i in used]
    for graph in model.subgraphs:
        for op in graph.operators:
            op.opcodeIndex = new_index[op.opcodeIndex]


def _quantized(tensor, type_names) -> bool:
    q = tensor.quantization
    return type_names.get(tensor.type) in QUANTIZED and q is not None and q.scale is not None and len(q.scale) == 1


def _static_shape(tensor) -> list[int]:
    sig = tensor.shapeSignature
    return [int(d) for d in (sig if sig is not None and len(sig) else tensor.shape)]


def _constant(model, graph, index: int) -> np.ndarray | None:
    data = model.buffers[graph.tensors[index].buffer].data
    return None if data is None or len(data) == 0 else np.frombuffer(bytes(np.asarray(data, np.uint8)), np.int32)


def _sum_as_mean(model, s, graph, op, names, report) -> list | None:
    """``[RESHAPE, MEAN]`` replacing the int8 ``SUM`` ``op``, or None (reason in ``report``)."""
    x = graph.tensors[op.inputs[0]]
    shape = _static_shape(x)
    axes = _constant(model, graph, op.inputs[1])
    label = f"{names[0]}:{graph.tensors[op.outputs[0]].name.decode()}"
    if axes is None:
        report.skipped.append(f"{label}: SUM over a computed axis")
        return None
    axes = [int(a) % len(shape) for a in axes]
    if any(shape[a] < 0 for a in axes) or sum(d < 0 for d in shape) > 1:
        report.skipped.append(f"{label}: SUM with a dynamic reduced dimension {shape}")
        return None
    n = prod(shape[a] for a in axes)
    rescaled = _new_tensor(model, s, graph, x, x.name.decode() + "/as_mean", scale=[x.quantization.scale[0] * n])
    reshape = s.OperatorT()
    reshape.opcodeIndex = _opcode_index(model, s, s.BuiltinOperator.RESHAPE, 1)
    reshape.inputs = [op.inputs[0]]
    reshape.outputs = [rescaled]
    reshape.builtinOptionsType = s.BuiltinOptions.ReshapeOptions
    reshape.builtinOptions = s.ReshapeOptionsT()
    reshape.builtinOptions.newShape = shape
    mean = copy.deepcopy(op)  # keeps the ReducerOptions (keep_dims)
    mean.opcodeIndex = _opcode_index(model, s, s.BuiltinOperator.MEAN, 2)
    mean.inputs = [rescaled, op.inputs[1]]
    report.sums.append(label)
    return [reshape, mean]


def _float_island(model, s, graph, op, code: int, names, report) -> list:
    """``DEQUANTIZE`` (each quantized input once) → the float32 kernel of builtin ``code`` →
    ``QUANTIZE`` into ``op``'s output: the same operator, computed in float32."""
    f32 = s.TensorType.FLOAT32
    y = graph.tensors[op.outputs[0]]

    def simple(c, version, inputs, outputs):
        o = copy.deepcopy(op)  # keeps the builtin options (e.g. SubOptions' activation)
        o.opcodeIndex = _opcode_index(model, s, c, version)
        o.inputs, o.outputs = inputs, outputs
        if c != code:
            o.builtinOptionsType, o.builtinOptions = 0, None
        return o

    ops, floats = [], {}
    for i in op.inputs:
        if i not in floats:
            x = graph.tensors[i]
            floats[i] = _new_tensor(model, s, graph, x, x.name.decode() + "/float", dtype=f32)
            ops.append(simple(s.BuiltinOperator.DEQUANTIZE, 2, [i], [floats[i]]))
    y_float = _new_tensor(model, s, graph, y, y.name.decode() + "/float", dtype=f32)
    ops.append(simple(code, 1, [floats[i] for i in op.inputs], [y_float]))
    ops.append(simple(s.BuiltinOperator.QUANTIZE, 1, [y_float], [op.outputs[0]]))
    report.float_ops.append(f"{names[0]}:{y.name.decode()}")
    return ops


def _sub_needs_large_multiplier(graph, op) -> bool:
    """True when an int8 ``SUB``'s output rescale is ≥ 1, which ``tflite-runtime`` 2.14 cannot
    represent (it aborts the process in ``QuantizeMultiplierSmallerThanOneExp``): the inputs are
    shifted left by 20 bits and rescaled by ``2·max(s1, s2) / (2^20 · s_out)``. The converter
    emits one for ``tf.reduce_logsumexp``'s ``max − max`` (an output scale of 7.8e-9)."""
    s1, s2, so = (float(graph.tensors[i].quantization.scale[0]) for i in (*op.inputs[:2], op.outputs[0]))
    return 2 * max(s1, s2) / ((1 << 20) * so) >= 1


def rewrite(flatbuffer: bytes) -> tuple[bytes, RewriteReport]:
    """Replace the int8 ``SUM``, ``LOG`` and ``SUB`` operators (module docstring) in every subgraph.

    Args:
        flatbuffer: a ``.tflite`` flatbuffer (trailing metadata is ignored and not returned).

    Returns:
        ``(flatbuffer, report)``: the input unchanged when there was nothing to replace.

    Raises:
        ImportError: no TFLite schema module installed.
    """
    s = _schema()
    model = model_object(flatbuffer)
    op_names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    report = RewriteReport([], [], [])
    for g, graph in enumerate(model.subgraphs):
        label = [(graph.name or b"").decode() or str(g)]
        ops = []
        for op in graph.operators:
            oc = model.operatorCodes[op.opcodeIndex]
            name = op_names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode))
            x = graph.tensors[op.inputs[0]] if op.inputs is not None and len(op.inputs) else None
            y = graph.tensors[op.outputs[0]] if op.outputs is not None and len(op.outputs) else None
            replaced = None
            if name == "SUM" and _quantized(x, type_names) and _quantized(y, type_names):
                replaced = _sum_as_mean(model, s, graph, op, label, report)
            elif name == "LOG" and _quantized(x, type_names):
                replaced = _float_island(model, s, graph, op, s.BuiltinOperator.LOG, label, report)
            elif name == "SUB" and all(
                _quantized(graph.tensors[i], type_names) for i in (*op.inputs[:2], op.outputs[0])
            ):
                if _sub_needs_large_multiplier(graph, op):
                    replaced = _float_island(model, s, graph, op, s.BuiltinOperator.SUB, label, report)
            ops.extend(replaced or [op])
        graph.operators = ops
    if not report.changed:
        return flatbuffer, report
    _drop_unused_opcodes(model)
    return pack_model(model, len(flatbuffer)), report
