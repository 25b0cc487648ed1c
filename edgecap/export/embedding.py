"""Export of the image–sentence alignment model: one ``.tflite`` file with two signatures.

- ``embed_image``: ``image uint8 (1, S, S, 3)`` → ``regions float32 (1, R, h)``, the region
  vectors v_i (grid cells, then the whole image);
- ``embed_sentence``: ``tokens int32 (B, T)`` (word ids, ``<pad>`` after the words) →
  ``words float32 (B, T, h)``, the word vectors s_t (0 at padding).

Same route, metadata and verification discipline as the captioners
(:mod:`edgecap.export.exporter`): SavedModel from ``keras.export.ExportArchive``, conversion,
then a numerical check against Keras before the file is marked verified. The metadata's
``task`` is ``"retrieval"`` and its ``contract`` declares the embedding shapes::

    {"embedding": {"regions": R, "grid": g, "dim": h, "max_words": T, "normalize": bool}}

``normalize``: the runtime scales each vector to unit length before eq. 8 (the model was
trained so); the signatures return the vectors before that.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edgecap.evaluation.retrieval import recall_at_k, rsum
from edgecap.export.exporter import convert, int8_float_layers
from edgecap.export.staging import calibration_and_check, keep_if_verified
from edgecap.runtime import metadata as md
from edgecap.runtime.alignment_scores import score_matrix, unit_vectors
from edgecap.runtime.preprocessing import load_image
from edgecap.runtime.vocabulary import Vocabulary
from edgecap.utils import atomic_write_bytes, work_dir

SIGNATURES = ("embed_image", "embed_sentence")
IMAGE, TOKENS, REGIONS, WORDS = "image", "tokens", "regions", "words"


def embedding_contract(model) -> dict:
    """The ``contract`` metadata field of an alignment file."""
    return {
        "embedding": {
            "regions": model.num_regions,
            "grid": model.spec.grid,
            "dim": model.config.hidden_dim,
            "max_words": model.config.max_words,
            "normalize": model.config.normalize,
        }
    }


def saved_model(model, out_dir: str | Path) -> Path:
    """Write the ``embed_image`` and ``embed_sentence`` endpoints of ``model`` (a built
    :class:`edgecap.models.alignment.model.VisualSemanticAlignment`) as a SavedModel."""
    S, T = model.spec.image_size, model.config.max_words
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "embed_image",
        lambda image: {REGIONS: model.embed_image(image)},
        input_signature=[tf.TensorSpec((1, S, S, 3), tf.uint8, name=IMAGE)],
    )
    archive.add_endpoint(
        "embed_sentence",
        lambda tokens: {WORDS: model.embed_sentence(tokens)},
        input_signature=[tf.TensorSpec((None, T), tf.int32, name=TOKENS)],
    )
    archive.write_out(str(out_dir), verbose=False)
    return Path(out_dir)


def sentence_tokens(vocab: Vocabulary, sentences: Sequence[str], max_words: int) -> np.ndarray:
    """``int32 (M, max_words)`` word ids, ``<pad>`` after the words (longer sentences are cut)."""
    rows = [vocab.encode(s, max_words)[1:-1] for s in sentences]
    return np.asarray([r + [vocab.pad_id] * (max_words - len(r)) for r in rows], np.int32).reshape(-1, max_words)


def representative_dataset(
    model, image_paths: Sequence[str | Path], sentences: Sequence[str], vocab: Vocabulary
) -> Iterator[tuple[str, dict]]:
    """Calibration samples for full-integer quantization: real training photos for
    ``embed_image``, real training sentences (one at a time) for ``embed_sentence``."""
    S = model.spec.image_size
    for path in image_paths:
        yield "embed_image", {IMAGE: load_image(path, S)[None]}
    for row in sentence_tokens(vocab, sentences, model.config.max_words):
        yield "embed_sentence", {TOKENS: row[None]}


@dataclass(frozen=True)
class EmbeddingTolerance:
    """Limits for one export mode: ``relative`` bounds mean |Δ| / mean |Keras| of the region
    and word vectors; ``rsum_ratio`` is the least share of the Keras R-sum the file keeps on
    the check set (a weightless or broken export ranks at chance). Even a float32 file may
    lose a little R-sum where scores tie (near-identical photos or sentences) and rounding
    breaks the ties the other way, so the float ratios are not 1."""

    relative: float
    rsum_ratio: float


TOLERANCES = {
    "float32": EmbeddingTolerance(1e-3, 0.95),
    "float16": EmbeddingTolerance(2e-2, 0.90),
    "dynamic": EmbeddingTolerance(0.3, 0.85),
    "int8": EmbeddingTolerance(0.5, 0.85),
}


@dataclass
class EmbeddingReport:
    """Agreement between an exported alignment file and Keras on N photos and their sentences.

    Attributes:
        mode, images, sentences: what was checked.
        regions_relative, words_relative: mean |Δ| / mean |Keras value| of each signature's output.
        rsum_keras, rsum_file: R-sum (six R@K, ×100) of each on the check set.
        passed: within :data:`TOLERANCES`.
    """

    mode: str
    images: int
    sentences: int
    regions_relative: float
    words_relative: float
    rsum_keras: float
    rsum_file: float
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.mode}: {'PASSED' if self.passed else 'FAILED'} on {self.images} images / {self.sentences} sentences — region vectors relative |Δ| {self.regions_relative:.3f}, "
            f"word vectors {self.words_relative:.3f}, R-sum Keras {self.rsum_keras:.1f} vs file {self.rsum_file:.1f}"
        )


def verify_embedding(
    model, retriever, image_paths: Sequence, sentences: Sequence[Sequence[str]], mode: str
) -> EmbeddingReport:
    """Compare the exported file (``retriever``, a :class:`edgecap.runtime.Retriever`) with
    ``model`` (Keras) on photos not used for calibration and their reference sentences."""
    S, T = model.spec.image_size, model.config.max_words
    embed_image = tf.function(model.embed_image)
    flat = [s for group in sentences for s in group]
    owner = np.repeat(np.arange(len(sentences)), [len(g) for g in sentences])
    k_regions, f_regions = [], []
    for path in image_paths:
        pixels = load_image(path, S)[None]
        k_regions.append(embed_image(pixels).numpy()[0])
        f_regions.append(retriever.embed_pixels(pixels, unit=False))
    tokens = sentence_tokens(retriever.vocab, flat, T)
    k_words = model.embed_sentence(tokens).numpy()
    f_words = retriever.embed_tokens(tokens, unit=False)
    lengths = (tokens != retriever.vocab.pad_id).sum(axis=1)
    k_regions, f_regions = np.stack(k_regions), np.stack(f_regions)

    def rel(a, b):
        return float(np.abs(a - b).mean() / max(np.abs(a).mean(), 1e-12))

    def ranked(regions, words):  # the file's vectors as the runtime scores them
        u = model.config.normalize
        return rsum(
            recall_at_k(
                score_matrix(unit_vectors(regions, u), [w[:n] for w, n in zip(unit_vectors(words, u), lengths)]), owner
            )
        )

    rsum_k, rsum_f = ranked(k_regions, k_words), ranked(f_regions, f_words)
    tol = TOLERANCES[mode]
    r_rel, w_rel = rel(k_regions, f_regions), rel(k_words, f_words)
    passed = r_rel <= tol.relative and w_rel <= tol.relative and rsum_f >= tol.rsum_ratio * rsum_k
    return EmbeddingReport(mode, len(image_paths), len(flat), r_rel, w_rel, rsum_k, rsum_f, passed)


def export_alignment(
    model,
    vocab: Vocabulary,
    out_path: str | Path,
    mode: str = "int8",
    calibration=None,
    name: str = "visual_semantic_alignment_flickr8k",
    version: str = "0",
    extra: dict | None = None,
    verified: bool = True,
    scratch_dir: str | Path | None = None,
    full_integer: bool = False,
) -> Path:
    """Convert ``model`` and write ``out_path`` atomically with the edgecap metadata (task ``"retrieval"``).

    ``full_integer``: as in :func:`edgecap.export.exporter.export_model`.

    Raises:
        ValueError, ExportError: see :func:`edgecap.export.exporter.convert`.
    """
    with tempfile.TemporaryDirectory(prefix="saved-model-", dir=scratch_dir) as tmp:
        float_layers = int8_float_layers(model, mode, full_integer)
        flatbuffer = convert(saved_model(model, Path(tmp) / "saved_model"), mode, calibration, SIGNATURES, float_layers)
    extra = {**(extra or {}), **({"int8_float_layers": float_layers} if mode == "int8" else {})}
    meta = md.ModelMetadata(
        name=name,
        version=version,
        architecture="alignment",
        quantization=mode,
        vocabulary=list(vocab.words),
        image_size=model.spec.image_size,
        normalization=model.spec.normalization,
        contract=embedding_contract(model),
        task="retrieval",
        max_length=model.config.max_words,
        extra=extra or {},
    )
    atomic_write_bytes(out_path, md.pack(flatbuffer, meta, verified))
    return Path(out_path)


def run_alignment_export(
    source: str | Path,
    cfg,
    vocab: Vocabulary,
    model,
    mode: str,
    output: str | Path | None,
    data_root: str | None = None,
    calibration_images: int = 300,
    verify_images: int = 100,
    version: str = "0",
    full_integer: bool = False,
):
    """``edgecap export`` of an alignment run: convert, verify against Keras, then write ``output``.

    Calibration uses training photos and sentences, verification dev photos and their five
    sentences each; without the dataset both fall back to ``examples/`` (with a warning).
    Writes ``<output>.verify.json`` (an :class:`EmbeddingReport`).

    Raises:
        ExportError: verification failed (the file is kept as ``<output>.rejected``, unverified).

    Returns:
        :class:`edgecap.export.staging.ExportResult`.
    """
    from edgecap.runtime.retriever import Retriever

    calib, check = calibration_and_check(cfg, data_root, calibration_images, verify_images)
    name = f"{cfg.model.model_name()}_{cfg.data.dataset}"
    output = Path(output) if output else Path(f"{name}_{mode}.tflite")

    def calibration():
        return representative_dataset(model, [it.path for it in calib], [c for it in calib for c in it.captions], vocab)

    extra = {
        "source_run": str(source),
        "dataset": cfg.data.dataset,
        "calibration_images": len(calib) if mode == "int8" else 0,
    }
    scratch = work_dir(output.resolve().parent, f".{output.name}.export-")
    try:
        staged = export_alignment(
            model,
            vocab,
            scratch / "staged.tflite",
            mode,
            calibration if mode == "int8" else None,
            name=name,
            version=version,
            extra=extra,
            verified=False,
            scratch_dir=scratch,
            full_integer=full_integer,
        )
        retriever = Retriever.from_file(staged, allow_unverified=True)
        report = verify_embedding(model, retriever, [it.path for it in check], [it.captions for it in check], mode)
        return keep_if_verified(staged, output, report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
