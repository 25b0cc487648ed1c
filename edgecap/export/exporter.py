"""``edgecap export``: one ``.tflite`` file with ``encode`` and ``decode_step`` signatures.

Route: ``keras.export.ExportArchive`` (two endpoints) → SavedModel →
``tf.lite.TFLiteConverter.from_saved_model(dir, signature_keys=[...])`` → metadata packed
after the flatbuffer → written atomically. (A bare ``tf.Module`` around a Keras 3 model
converts without error but without weights, so every export is verified numerically; see
:mod:`edgecap.export.verify`.)

Signatures (B is dynamic, so all beams run in one call):

- ``encode``: ``image uint8 (1, S, S, 3)`` → ``annotations (1, L, D)``, ``h (1, H)``, ``c (1, H)``
- ``decode_step``: ``tokens int32 (B,)``, ``h``, ``c`` ``(B, H)``, ``annotations (B, L, D)`` →
  ``log_probs (B, V)``, ``h``, ``c``, ``alpha (B, L)``
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edgecap.data.vocabulary import Vocabulary
from edgecap.runtime import metadata as md
from edgecap.runtime.preprocessing import load_image
from edgecap.utils import atomic_write_bytes

MODES = ("float32", "float16", "dynamic", "int8")


class ExportError(RuntimeError):
    """Conversion failed or the exported file does not match the Keras model."""


def saved_model(model, out_dir: str | Path) -> Path:
    """Write the two endpoints of ``model`` (a built ShowAttendTell) as a SavedModel."""
    spec, H = model.spec, model.decoder.hidden_dim
    S, L, D = spec.image_size, spec.num_locations, spec.dim
    archive = keras.export.ExportArchive()
    archive.track(model)

    def encode(image):
        annotations, h, c = model.encode(image)
        return {"annotations": annotations, "h": h, "c": c}

    def decode_step(tokens, h, c, annotations):
        log_probs, h, c, alpha = model.decode_step(tokens, h, c, annotations)
        return {"log_probs": log_probs, "h": h, "c": c, "alpha": alpha}

    archive.add_endpoint("encode", encode, input_signature=[tf.TensorSpec((1, S, S, 3), tf.uint8, name="image")])
    archive.add_endpoint(
        "decode_step",
        decode_step,
        input_signature=[
            tf.TensorSpec((None,), tf.int32, name="tokens"),
            tf.TensorSpec((None, H), tf.float32, name="h"),
            tf.TensorSpec((None, H), tf.float32, name="c"),
            tf.TensorSpec((None, L, D), tf.float32, name="annotations"),
        ],
    )
    archive.write_out(str(out_dir), verbose=False)
    return Path(out_dir)


def representative_dataset(model, image_paths: Sequence[str | Path], captions: Sequence[str], vocab: Vocabulary, steps_per_image: int = 6) -> Iterator[tuple[str, dict]]:
    """Calibration samples for full-integer quantization, per signature.

    ``encode`` sees real training photos (pixels spanning 0..255); ``decode_step`` sees the
    real states those photos produce while the Keras model reads a human caption of each
    (teacher forcing), so ``h``, ``c`` and the annotations have their true ranges.

    Yields:
        ``("encode", {"image": uint8 (1, S, S, 3)})`` and
        ``("decode_step", {"tokens", "h", "c", "annotations"})`` with B = 1.
    """
    S = model.spec.image_size
    step = tf.function(model.decode_step, reduce_retracing=True)
    encode = tf.function(model.encode, reduce_retracing=True)
    for path, caption in zip(image_paths, captions):
        pixels = load_image(path, S)[None]
        yield "encode", {"image": pixels}
        annotations, h, c = encode(pixels)
        ids = vocab.encode(caption)
        for token in ids[:-1][:steps_per_image]:
            yield "decode_step", {"tokens": np.array([token], np.int32), "h": h.numpy(), "c": c.numpy(), "annotations": annotations.numpy()}
            _, h, c, _ = step(tf.constant([token], tf.int32), h, c, annotations)


def convert(saved_model_dir: str | Path, mode: str = "float32", calibration=None) -> bytes:
    """SavedModel → TFLite flatbuffer in one of :data:`MODES`.

    Args:
        mode: ``float32``; ``float16`` (weights in float16); ``dynamic`` (int8 weights, float
            activations); ``int8`` (full-integer, int8 builtins only; needs ``calibration``).
        calibration: zero-argument callable returning the representative dataset iterator.

    Raises:
        ValueError: unknown mode, or ``int8`` without calibration.
        ExportError: the converter failed.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["encode", "decode_step"])
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if calibration is None:
            raise ValueError("int8 export needs a representative dataset")
        converter.representative_dataset = calibration
        # Full-integer: int8 builtins only. Inputs/outputs stay float32 (and the image uint8,
        # cast inside the graph): inference_input_type would also turn h, c into integers.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        return converter.convert()
    except Exception as e:  # the converter raises many types; report one
        raise ExportError(f"TFLite conversion ({mode}) failed: {e}") from e


def export_model(model, vocab: Vocabulary, out_path: str | Path, mode: str = "float32", calibration=None, name: str = "show_attend_tell_flickr8k", version: str = "0", max_length: int = 20, beam_size: int = 3, length_penalty: float = 0.0, extra: dict | None = None, no_repeat_ngram_size: int = 0) -> Path:
    """Convert ``model`` and write ``out_path`` atomically with the edgecap metadata packed in.

    Returns:
        ``out_path``.

    Raises:
        ValueError, ExportError: see :func:`convert`.
    """
    spec = model.spec
    with tempfile.TemporaryDirectory(prefix="edgecap-export-") as tmp:
        flatbuffer = convert(saved_model(model, Path(tmp) / "saved_model"), mode, calibration)
    meta = md.ModelMetadata(
        name=name, version=version, architecture="show_attend_tell", quantization=mode, vocabulary=list(vocab.words),
        image_size=spec.image_size, normalization=spec.normalization, grid=spec.grid, hidden_dim=model.decoder.hidden_dim,
        annotation_dim=spec.dim, pad_id=vocab.pad_id, start_id=vocab.start_id, end_id=vocab.end_id, unk_id=vocab.unk_id,
        max_length=max_length, beam_size=beam_size, length_penalty=length_penalty, no_repeat_ngram_size=no_repeat_ngram_size, extra=extra or {},
    )
    atomic_write_bytes(out_path, md.pack(flatbuffer, meta))
    return Path(out_path)
