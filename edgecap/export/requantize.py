"""A uint8 (TF1 quantization-aware) ``.tflite`` file rewritten as an int8 one with per-channel weights.

Why: LiteRT runs int8 convolutions through XNNPACK, but leaves uint8 ones (the old TF1
quantized files, e.g. the COCO detector tagger) on its reference-grade builtin kernels, which
cost about 1.6× as much on the same multiply-accumulates (issue 46).

What changes, and what stays exact:

- **Activations** (and constant activation-like tensors such as the detector's anchors):
  ``q8 = q_u8 − 128`` with ``zero_point − 128`` and the same scale. The same real numbers, so
  the quantization-aware training's ranges are kept exactly; nothing is recalibrated.
- **Weights** of ``CONV_2D`` and ``DEPTHWISE_CONV_2D``: dequantized exactly from uint8
  (``w = s · (q − z)``), then quantized again symmetric per output channel,
  ``s_c = max_k |w_{c,k}| / 127``, ``q = round(w / s_c)`` (the scheme of Jacob et al. 2018,
  "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
  Inference", with TFLite's int8 per-channel spec). The only lossy step: each weight moves by at
  most ``s_c / 2``.
- **Biases** (int32): the same real bias at the new scale ``s_in · s_c``.
- The **input** stays uint8 (callers feed the same pixels); one ``QUANTIZE`` op shifts it to
  int8. A ``CONCATENATION`` input whose scale or zero point differs from the output's gets a
  ``QUANTIZE`` (requantize) op before it, since the int8 kernel does not rescale.

:func:`uint8_to_int8` needs only the TFLite schema that ships with the interpreter package.
"""

from __future__ import annotations

import numpy as np

from edgecap.export.portable_ops import _new_tensor, _opcode_index
from edgecap.runtime.ops import _schema, model_object, pack_model

#: operators the rewrite knows: anything else in a uint8 file is refused
_KNOWN = ("CONV_2D", "DEPTHWISE_CONV_2D", "CONCATENATION", "RESHAPE", "LOGISTIC", "CUSTOM", "QUANTIZE")
#: operator versions for int8 tensors (as the TFLite converter writes them)
_INT8_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "CONCATENATION": 2, "LOGISTIC": 2, "QUANTIZE": 2}
#: the weight axis that holds the output channels, per operator (TFLite's quantized_dimension)
_CHANNEL_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}


class RequantizeError(ValueError):
    """The file is not a uint8 file this rewrite knows (the message names the operator or tensor)."""


def _op_namer(s, model):
    """``op`` → its builtin operator's name, ``"CUSTOM"`` for a custom op."""
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}

    def name(op) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")

    return name


def _buffer(model, tensor) -> np.ndarray | None:
    data = model.buffers[tensor.buffer].data
    return None if data is None or len(data) == 0 else np.asarray(data, np.uint8)


def _set_buffer(s, model, tensor, values: np.ndarray) -> None:
    """Give ``tensor`` a buffer of its own holding ``values``' bytes (little-endian); the old
    one is dropped by :func:`_drop_unused_buffers` if nothing else reads it."""
    buffer = s.BufferT()
    buffer.data = np.frombuffer(values.astype(values.dtype.newbyteorder("<")).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1


def _drop_unused_buffers(model) -> None:
    """Remove the buffers no tensor or metadata entry reads (buffer 0, the empty one, stays)."""
    used = {0} | {t.buffer for g in model.subgraphs for t in g.tensors} | {m.buffer for m in model.metadata or []}
    keep = sorted(used)
    index = {old: new for new, old in enumerate(keep)}
    model.buffers = [model.buffers[i] for i in keep]
    for g in model.subgraphs:
        for t in g.tensors:
            t.buffer = index[t.buffer]
    for m in model.metadata or []:
        m.buffer = index[m.buffer]


def _quantization(s, scale, zero_point, axis: int = 0):
    q = s.QuantizationParametersT()
    q.scale = np.atleast_1d(np.asarray(scale, np.float32))
    q.zeroPoint = np.atleast_1d(np.asarray(zero_point, np.int64))
    q.quantizedDimension = axis
    return q


def _requantize_weights(s, model, op, name: str) -> None:
    """The op's uint8 weights → int8 symmetric per channel, and its int32 bias to match."""
    graph = model.subgraphs[0]
    x, w, b = (graph.tensors[i] for i in op.inputs[:3])
    axis = _CHANNEL_AXIS[name]
    q = _buffer(model, w)
    if q is None:
        raise RequantizeError(f"{name} {w.name.decode()}: the weights are not constant")
    real = (q.astype(np.float64) - int(w.quantization.zeroPoint[0])) * float(w.quantization.scale[0])
    real = real.reshape(w.shape)  # (Co, kh, kw, Ci) or (1, kh, kw, C)
    others = tuple(d for d in range(real.ndim) if d != axis)
    old_scale = float(w.quantization.scale[0])
    # a channel whose integers q − z fit in [−127, 127] keeps the old scale: exact; the others
    # are scaled to their own range (the only lossy step)
    scale = np.abs(real).max(axis=others) / 127.0  # (C,) float64
    scale = np.where(scale <= old_scale, old_scale, scale).astype(np.float32).astype(np.float64)
    shape = [1] * real.ndim
    shape[axis] = -1
    q8 = np.clip(np.round(real / scale.reshape(shape)), -127, 127).astype(np.int8)
    _set_buffer(s, model, w, q8)
    w.type = s.TensorType.INT8
    w.quantization = _quantization(s, scale, np.zeros_like(scale, np.int64), axis)
    bias_real = np.frombuffer(_buffer(model, b).tobytes(), "<i4").astype(np.float64) * float(b.quantization.scale[0])
    bias_scale = float(x.quantization.scale[0]) * scale  # (C,)
    _set_buffer(s, model, b, np.round(bias_real / bias_scale).astype(np.int32))
    b.quantization = _quantization(s, bias_scale, np.zeros_like(bias_scale, np.int64), 0)


def _shift_to_int8(s, model, tensor) -> None:
    """A uint8 tensor → int8 holding the same real numbers (q − 128, zero point − 128)."""
    data = _buffer(model, tensor)
    if data is not None:
        _set_buffer(s, model, tensor, (data.astype(np.int16) - 128).astype(np.int8))
    tensor.type = s.TensorType.INT8
    quant = tensor.quantization
    tensor.quantization = _quantization(s, quant.scale, np.asarray(quant.zeroPoint) - 128, quant.quantizedDimension)


def _tensor_like(s, model, like, name: str, tensor_type: int, quantization) -> int:
    """A new tensor shaped as ``like`` (no data), of ``tensor_type`` and ``quantization``."""
    graph = model.subgraphs[0]
    index = _new_tensor(model, s, graph, like, name)
    graph.tensors[index].type, graph.tensors[index].quantization = tensor_type, quantization
    return index


def _unary_op(s, model, kind: str, source: int, target: int):
    """A ``QUANTIZE`` or ``DEQUANTIZE`` op from tensor ``source`` to ``target`` (version 2: int8)."""
    op = s.OperatorT()
    op.opcodeIndex = _opcode_index(model, s, getattr(s.BuiltinOperator, kind), 2)
    op.inputs = np.array([source], np.int32)
    op.outputs = np.array([target], np.int32)
    op.builtinOptionsType = getattr(s.BuiltinOptions, kind.title() + "Options")
    op.builtinOptions = getattr(s, kind.title() + "OptionsT")()
    return op


def _float_inputs(s, model, op, ops: list) -> None:
    """A custom op's int8 inputs as float32: constants dequantized in the file, the others by a
    ``DEQUANTIZE`` op appended to ``ops`` (the int8 kernels of custom ops such as
    ``TFLite_Detection_PostProcess`` are not in every runtime)."""
    graph = model.subgraphs[0]
    new_inputs = []
    for i in op.inputs:
        t = graph.tensors[i]
        if i < 0 or t.type != s.TensorType.INT8:
            new_inputs.append(i)
            continue
        scale, zero = float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0])
        data = _buffer(model, t)
        if data is not None:
            t.type, t.quantization = s.TensorType.FLOAT32, None
            _set_buffer(s, model, t, ((data.view(np.int8).astype(np.float32) - zero) * scale).astype(np.float32))
            new_inputs.append(i)
            continue
        j = _tensor_like(s, model, t, t.name.decode() + "/float", s.TensorType.FLOAT32, None)
        ops.append(_unary_op(s, model, "DEQUANTIZE", int(i), j))
        new_inputs.append(j)
    op.inputs = np.array(new_inputs, np.int32)


def uint8_to_int8(flatbuffer: bytes) -> bytes:
    """The int8 per-channel rewrite of a one-subgraph uint8 ``.tflite`` file (see the module docstring).

    Args:
        flatbuffer: the uint8 file's bytes.

    Returns:
        the int8 file's bytes: same inputs (uint8) and outputs, int8 inside.

    Raises:
        RequantizeError: more than one subgraph, an operator outside ``CONV_2D``,
            ``DEPTHWISE_CONV_2D``, ``CONCATENATION``, ``RESHAPE``, ``LOGISTIC`` and custom ops, or
            a convolution whose weights are not constant uint8.
        ImportError: no TFLite schema module installed.
    """
    s = _schema()
    model = model_object(flatbuffer)
    if len(model.subgraphs) != 1:
        raise RequantizeError(f"one subgraph expected, the file has {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    uint8 = s.TensorType.UINT8
    op_name = _op_namer(s, model)
    for op in graph.operators:
        name = op_name(op)
        if name not in _KNOWN:
            raise RequantizeError(f"operator {name} is not one the int8 rewrite knows")
        if name in _CHANNEL_AXIS and graph.tensors[op.inputs[1]].type == uint8:
            _requantize_weights(s, model, op, name)
        code = model.operatorCodes[op.opcodeIndex]
        if name in _INT8_VERSIONS and code.customCode is None:
            code.version = max(code.version, _INT8_VERSIONS[name])
    for tensor in graph.tensors:
        if tensor.type == uint8:
            _shift_to_int8(s, model, tensor)
    ops = list(graph.operators)
    # the uint8 input, shifted to int8 by one QUANTIZE op in front
    inputs = []
    for i in graph.inputs:
        inner = graph.tensors[i]
        if inner.type != s.TensorType.INT8:
            inputs.append(i)
            continue
        quant = inner.quantization
        outer_quant = _quantization(s, quant.scale, np.asarray(quant.zeroPoint) + 128)
        outer = _tensor_like(s, model, inner, inner.name.decode(), uint8, outer_quant)
        inner.name = inner.name + b"/int8"
        ops.insert(0, _unary_op(s, model, "QUANTIZE", outer, int(i)))
        inputs.append(outer)
    graph.inputs = np.array(inputs, np.int32)
    # concatenation inputs requantized to the output's scale and zero point
    rewritten = []
    for op in ops:
        if op_name(op) == "CONCATENATION":
            out = graph.tensors[op.outputs[0]].quantization
            new_inputs = []
            for i in op.inputs:
                t = graph.tensors[i]
                q = t.quantization
                same = np.array_equal(q.scale, out.scale) and np.array_equal(q.zeroPoint, out.zeroPoint)
                if t.type != s.TensorType.INT8 or same:
                    new_inputs.append(i)
                    continue
                requantized = _quantization(s, out.scale, out.zeroPoint)
                j = _tensor_like(s, model, t, t.name.decode() + "/requantized", s.TensorType.INT8, requantized)
                rewritten.append(_unary_op(s, model, "QUANTIZE", int(i), j))
                new_inputs.append(j)
            op.inputs = np.array(new_inputs, np.int32)
        elif op_name(op) == "CUSTOM":
            _float_inputs(s, model, op, rewritten)
        rewritten.append(op)
    graph.operators = rewritten
    _drop_unused_buffers(model)
    model.description = b"edgecap: int8 per-channel rewrite of a uint8 file (edgecap/export/requantize.py)"
    return pack_model(model, len(flatbuffer))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(ymin, xmin, ymax, xmax)`` boxes."""
    y0, x0, y1, x1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, y1 - y0) * max(0.0, x1 - x0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def detection_agreement(old: list, new: list, min_score: float = 0.3) -> dict:
    """How far a detector's outputs moved between two files (or two runtimes), photo by photo.

    Each detection of ``old`` scored at least ``min_score`` is matched to the detection of
    ``new`` of the same class with the highest IoU; below IoU 0.5 it is unmatched.

    Args:
        old, new: per photo, the ``TFLite_Detection_PostProcess`` outputs ``[boxes (1, n, 4),
            classes (1, n), scores (1, n), count (1,)]`` (float32).
        min_score: detections of ``old`` scored below this are not compared.

    Returns:
        ``{"detections", "unmatched", "max_dscore", "mean_dscore", "max_dbox"}``: the compared
        detections, those without a match, and over the matched ones the largest and mean
        absolute score difference and the largest box-coordinate difference.
    """
    deltas, box, unmatched, total = [], 0.0, 0, 0
    for (b0, c0, s0, n0), (b1, c1, s1, n1) in zip(old, new):
        for j in range(int(n0[0])):
            if s0[0, j] < min_score:
                continue
            total += 1
            candidates = [(_iou(b0[0, j], b1[0, k]), k) for k in range(int(n1[0])) if c1[0, k] == c0[0, j]]
            overlap, k = max(candidates, default=(0.0, -1))
            if overlap < 0.5:
                unmatched += 1
                continue
            deltas.append(abs(float(s0[0, j] - s1[0, k])))
            box = max(box, float(np.abs(b0[0, j] - b1[0, k]).max()))
    return {
        "detections": total,
        "unmatched": unmatched,
        "max_dscore": max(deltas, default=0.0),
        "mean_dscore": float(np.mean(deltas)) if deltas else 0.0,
        "max_dbox": box,
    }
