"""``edgecap export``: one ``.tflite`` file with ``encode`` and ``decode_step`` signatures.

Route: ``keras.export.ExportArchive`` (two endpoints) → SavedModel →
``tf.lite.TFLiteConverter.from_saved_model(dir, signature_keys=[...])`` → metadata packed
after the flatbuffer → written atomically. (A bare ``tf.Module`` around a Keras 3 model
converts without error but without weights, so every export is verified numerically; see
:mod:`edgecap.export.verify`.)

The signatures follow the model's step contract (:mod:`edgecap.runtime.contract`), which the
metadata records; nothing here knows a model's tensors:

- ``encode``: ``image uint8 (1, S, S, 3)`` → every state and memory tensor ``(1, *shape)``
  (and the items' ids and scores when the contract declares items);
- ``decode_step``: ``tokens int32 (B,)``, state ``(B, *shape)``, memory ``(1, *shape)`` →
  ``log_probs (B, V)``, the new state, and the attention map if the contract declares one.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edgecap.export import portable_ops
from edgecap.runtime import metadata as md
from edgecap.runtime.contract import LOG_PROBS, TOKENS, StepContract
from edgecap.runtime.ops import operators
from edgecap.runtime.preprocessing import load_image
from edgecap.runtime.vocabulary import Vocabulary
from edgecap.utils import atomic_write_bytes

MODES = ("float32", "float16", "dynamic", "int8")


class ExportError(RuntimeError):
    """Conversion failed or the exported file does not match the Keras model."""


def _spec(decl, batch) -> tf.TensorSpec:
    return tf.TensorSpec((batch, *decl.shape), tf.as_dtype(decl.dtype), name=decl.name)


def step_input_signature(contract: StepContract) -> list[tf.TensorSpec]:
    """``decode_step``'s inputs: tokens, state (B rows), memory (1 row, or B when ``per_beam``)."""
    return [tf.TensorSpec((None,), tf.int32, name=TOKENS)] + [
        _spec(t, None if t.role == "state" or t.per_beam else 1) for t in contract.tensors
    ]


def saved_model(model, out_dir: str | Path) -> Path:
    """Write the ``encode`` and ``decode_step`` endpoints of ``model`` (a built
    :class:`edgecap.models.base.StepwiseCaptioner`) as a SavedModel."""
    contract = model.step_contract()
    S = model.spec.image_size
    names = [t.name for t in contract.tensors]
    outputs = contract.encode_names  # state, memory, items
    archive = keras.export.ExportArchive()
    archive.track(model)

    def encode(image):
        tensors = model.encode(image)
        return {n: tensors[n] for n in outputs}

    def decode_step(tokens, *tensors):
        state, memory = model.split(dict(zip(names, tensors)))  # the tag tensors too, when declared
        log_probs, state, attention = model.decode_step(tokens, state, memory)
        out = {LOG_PROBS: log_probs, **state}
        if contract.attention is not None:
            out[contract.attention.output] = attention
        return out

    archive.add_endpoint("encode", encode, input_signature=[tf.TensorSpec((1, S, S, 3), tf.uint8, name="image")])
    archive.add_endpoint("decode_step", decode_step, input_signature=step_input_signature(contract))
    archive.write_out(str(out_dir), verbose=False)
    return Path(out_dir)


def representative_dataset(
    model,
    image_paths: Sequence[str | Path],
    captions: Sequence[str],
    vocab: Vocabulary,
    steps_per_image: int = 6,
    tags: Sequence[dict] | None = None,
) -> Iterator[tuple[str, dict]]:
    """Calibration samples for full-integer quantization, per signature.

    ``encode`` sees real training photos (pixels spanning 0..255); ``decode_step`` sees the
    real state and memory those photos produce while the Keras model reads a human caption of
    each (teacher forcing), so every tensor of the step contract has its true range.

    ``tags``: per photo, a tag-conditioned model's tag tensors (``(1, K)`` each, as the runtime
    fills them from its tagger); None: no tags.

    Yields:
        ``("encode", {"image": uint8 (1, S, S, 3)})`` and
        ``("decode_step", {"tokens": int32 (1,), <state and memory tensors>})`` with B = 1.
    """
    S = model.spec.image_size
    step = tf.function(model.decode_step, reduce_retracing=True)
    encode = tf.function(model.encode, reduce_retracing=True)
    for n, (path, caption) in enumerate(zip(image_paths, captions)):
        pixels = load_image(path, S)[None]
        yield "encode", {"image": pixels}
        state, memory = model.split({**encode(pixels), **(tags[n] if tags else {})})
        memory_np = {n: v.numpy() for n, v in memory.items()}
        for token in vocab.encode(caption)[:-1][:steps_per_image]:
            yield (
                "decode_step",
                {TOKENS: np.array([token], np.int32), **{n: v.numpy() for n, v in state.items()}, **memory_np},
            )
            _, state, _ = step(tf.constant([token], tf.int32), state, memory)


def _int8_with_float_layers(converter, calibration, float_layers: str) -> bytes:
    """Calibrate once, then quantize every op to int8 except those whose output tensor name
    matches ``float_layers`` (TFLite's selective quantization, through
    ``tf.lite.experimental.QuantizationDebugger``'s ``denylisted_nodes``)."""
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=calibration)
    pattern = re.compile(float_layers)
    # the debugger's model also holds NumericVerify ops (custom), one per quantized op: skipped
    nodes = sorted(
        {n for op in operators(debugger.quant_model) if op.name != "CUSTOM" for n in op.outputs if pattern.search(n)}
    )
    if not nodes:
        raise ExportError(f"no layer of the model matches the float32 layers {float_layers!r}")
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
    return debugger.get_nondebug_quantized_model()


def convert(
    saved_model_dir: str | Path,
    mode: str = "float32",
    calibration=None,
    signature_keys: Sequence[str] = ("encode", "decode_step"),
    float_layers: str = "",
) -> bytes:
    """SavedModel → TFLite flatbuffer in one of :data:`MODES`.

    Args:
        mode: ``float32``; ``float16`` (weights in float16); ``dynamic`` (int8 weights, float
            activations); ``int8`` (int8 weights and activations, calibrated; needs ``calibration``).
        calibration: zero-argument callable returning the representative dataset iterator.
        signature_keys: the SavedModel's endpoints to convert.
        float_layers: ``int8`` only: a regular expression over the converted ops' output
            tensor names (which hold the Keras layer names); matching ops stay float32, with
            quantize/dequantize around them. ``""``: full-integer (int8 builtins only).

    An ``int8`` flatbuffer then goes through :func:`edgecap.export.portable_ops.rewrite`, so
    that it computes the same with the reference kernels and runs on ``tflite-runtime`` 2.14.

    Raises:
        ValueError: unknown mode, or ``int8`` without calibration.
        ExportError: the converter failed, or ``float_layers`` matches no op.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=list(signature_keys))
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if calibration is None:
            raise ValueError("int8 export needs a representative dataset")
        converter.representative_dataset = calibration
        if not float_layers:
            # Full-integer: int8 builtins only. Inputs/outputs stay float32 (and the image uint8,
            # cast inside the graph): inference_input_type would also turn h, c into integers.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        if mode == "int8":
            converted = (
                _int8_with_float_layers(converter, calibration, float_layers) if float_layers else converter.convert()
            )
            return portable_ops.rewrite(converted)[0]
        return converter.convert()
    except ExportError:
        raise
    except Exception as e:  # the converter raises many types; report one
        raise ExportError(f"TFLite conversion ({mode}) failed: {e}") from e


def int8_float_layers(model, mode: str, full_integer: bool = False) -> str:
    """The layers an export of ``model`` in ``mode`` keeps in float32: for ``int8``, the
    encoder's ``spec.int8_float_layers`` (MobileNetV2: its stem) unless ``full_integer``;
    ``""`` otherwise. Recorded in the file's metadata as ``extra["int8_float_layers"]``."""
    return model.spec.int8_float_layers if mode == "int8" and not full_integer else ""


def export_model(
    model,
    vocab: Vocabulary,
    out_path: str | Path,
    mode: str = "float32",
    calibration=None,
    name: str | None = None,
    version: str = "0",
    max_length: int = 20,
    beam_size: int = 3,
    length_penalty: float = 0.0,
    extra: dict | None = None,
    no_repeat_ngram_size: int = 0,
    architecture: str | None = None,
    verified: bool = True,
    scratch_dir: str | Path | None = None,
    full_integer: bool = False,
) -> Path:
    """Convert ``model`` and write ``out_path`` atomically with the edgecap metadata packed in.

    Args:
        model: a built :class:`edgecap.models.base.StepwiseCaptioner`; its step contract goes
            into the metadata.
        name: the model's name in the metadata (default: its architecture's).
        architecture: the model family's registry name (default: ``model.config.architecture``).
        verified: False marks the file as not yet checked against Keras: the runtime refuses
            it until it is re-packed as verified (:func:`edgecap.export.command.run_export`).
        scratch_dir: where the intermediate SavedModel goes (default: the system's temp folder).
        full_integer: ``int8`` only: quantize every op, the encoder's
            ``spec.int8_float_layers`` included (see :func:`int8_float_layers`).

    Returns:
        ``out_path``.

    Raises:
        ValueError, ExportError: see :func:`convert`.
    """
    spec = model.spec
    architecture = architecture or getattr(getattr(model, "config", None), "architecture", None) or type(model).__name__
    name = name or architecture
    with tempfile.TemporaryDirectory(prefix="saved-model-", dir=scratch_dir) as tmp:
        float_layers = int8_float_layers(model, mode, full_integer)
        flatbuffer = convert(
            saved_model(model, Path(tmp) / "saved_model"), mode, calibration, float_layers=float_layers
        )
    extra = {**(extra or {}), **({"int8_float_layers": float_layers} if mode == "int8" else {})}
    meta = md.ModelMetadata(
        name=name,
        version=version,
        architecture=architecture,
        quantization=mode,
        vocabulary=list(vocab.words),
        image_size=spec.image_size,
        normalization=spec.normalization,
        contract=model.step_contract().to_dict(),
        pad_id=vocab.pad_id,
        start_id=vocab.start_id,
        end_id=vocab.end_id,
        unk_id=vocab.unk_id,
        max_length=max_length,
        beam_size=beam_size,
        length_penalty=length_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
        extra=extra or {},
    )
    atomic_write_bytes(out_path, md.pack(flatbuffer, meta, verified))
    return Path(out_path)
