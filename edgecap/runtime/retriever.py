"""``Retriever``: image search, image annotation and word–region alignment with an edgecap
alignment ``.tflite`` file, without TensorFlow.

    from edgecap.runtime import Retriever
    retriever = Retriever.from_preset()  # the built-in visual_semantic_alignment_flickr8k
    # or Retriever.from_file("vsa_int8.tflite"), from `edgecap export` of an alignment run
    retriever.index(["beach.jpg", "dog.jpg", "kitchen.jpg"])
    for hit in retriever.search("a dog runs on the beach", k=2):
        print(hit.score, hit.path)

The model (Karpathy & Fei-Fei, CVPR 2015, §3.1) maps a photo to R region vectors and a
sentence to one vector per word; a photo–sentence score is eq. 8, ``Σ_t max_i v_iᵀ s_t``
(:mod:`edgecap.runtime.alignment_scores`). An index keeps the region vectors of a photo
collection in 4 bits and a pooled vector per photo in int8 (:mod:`edgecap.runtime.photo_index`,
13.5 KB a photo, memory-mapped), so a query costs one ``embed_sentence`` call, one int8
matrix–vector product over the pooled vectors and eq. 8 over the best few hundred photos.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecap.runtime import metadata as md
from edgecap.runtime.alignment_scores import score_matrix, unit_vectors, word_alignment
from edgecap.runtime.interpreter import BACKENDS, Signature, check_kernels, make_interpreter, quiet_native_logs
from edgecap.runtime.photo_index import (
    DEFAULT_CANDIDATES,
    PhotoIndex,
    PhotoIndexError,
    empty_like_index,
    quantize_photos,
)
from edgecap.runtime.preprocessing import DEFAULT_MAX_PIXELS, ImageInput, ImageLoadError, load_image
from edgecap.runtime.vocabulary import Vocabulary


class QueryError(ValueError):
    """A text query the model cannot read (empty, or no word of its vocabulary)."""


@dataclass
class RetrieverOptions:
    """How to load the model.

    Attributes:
        num_threads: interpreter CPU threads (None: backend default).
        backends: interpreter packages to try, in order.
        quiet: silence the interpreter's own log lines while the model loads.
        check_digest: compare the weights with the SHA-256 digest in the metadata at load.
        max_pixels: refuse photos with more pixels than this once decoded.
        kernels: ``"default"`` | ``"builtin"`` | ``"reference"``
            (:func:`edgecap.runtime.interpreter.make_interpreter`): ``"reference"`` runs the
            integer operators identically on every CPU.

    Raises:
        ValueError: unknown ``kernels``.
    """

    num_threads: int | None = None
    backends: tuple[str, ...] = BACKENDS
    quiet: bool = True
    check_digest: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    kernels: str = "default"

    def __post_init__(self):
        check_kernels(self.kernels)


@dataclass
class Hit:
    """One ranked result: ``index`` into the photos (search) or sentences (annotate), its
    ``score`` (eq. 8, unitless), and the photo ``path`` or the ``sentence``."""

    index: int
    score: float
    path: str = ""
    sentence: str = ""


@dataclass
class Alignment:
    """Where each word of a sentence fits a photo best (the arg max of eq. 8).

    Attributes:
        words: the sentence's words the model read (unknown ones shown as ``<unk>``).
        regions: ``int (T,)`` region per word: ``r < grid²`` is grid cell ``(r // grid, r % grid)``
            (row, column), ``r = grid²`` the whole image.
        dots: ``float32 (T, R)`` the scores ``v_iᵀ s_t`` of each word with each region.
        grid: side of the cell grid (7 for MobileNetV2).
        score: the photo–sentence score, ``dots.max(axis=1).sum()``.
    """

    words: list[str]
    regions: np.ndarray
    dots: np.ndarray
    grid: int
    score: float

    def cell(self, t: int) -> tuple[int, int] | None:
        """``(row, column)`` of word t's grid cell, or None when it aligns to the whole image."""
        r = int(self.regions[t])
        return None if r >= self.grid * self.grid else divmod(r, self.grid)


class Retriever:
    """An alignment model file: photos and sentences → region and word vectors → eq. 8 scores.

    Thread-safe: one interpreter call at a time (a lock); for photos in parallel, one
    ``Retriever`` per thread.

    Args:
        model_content: the file's bytes; ``metadata``: its metadata (``task == "retrieval"``).

    Raises:
        ModelFileError: not a retrieval model, or the interpreter cannot run it (names ``source``).
    """

    TASK = "retrieval"  #: the metadata ``task`` of the files it runs

    def __init__(
        self,
        model_content: bytes,
        metadata: md.ModelMetadata,
        options: RetrieverOptions | None = None,
        source: str = "<model>",
    ):
        self.options = options or RetrieverOptions()
        self.metadata = metadata
        self.source = source
        decl = (metadata.contract or {}).get("embedding") if metadata.task == self.TASK else None
        if not isinstance(decl, dict) or not all(
            isinstance(decl.get(k), int) and decl[k] > 0 for k in ("regions", "grid", "dim", "max_words")
        ):
            raise md.ModelFileError(
                f"{source}: a {metadata.task} model ({metadata.architecture}), not an image–sentence alignment model; use 'edgecap caption' for captioners"
                if metadata.task != self.TASK
                else f"{source}: retrieval metadata without a valid 'embedding' declaration; re-export the model"
            )
        self.num_regions, self.grid, self.dim, self.max_words = (
            decl["regions"],
            decl["grid"],
            decl["dim"],
            decl["max_words"],
        )
        self.normalize = bool(decl.get("normalize", False))
        self.vocab = Vocabulary(list(metadata.vocabulary))
        try:
            self.interpreter, self.backend = make_interpreter(
                model_content, self.options.num_threads, self.options.backends, self.options.kernels
            )
            self.image_signature = Signature(self.interpreter, "embed_image")
            self.sentence_signature = Signature(self.interpreter, "embed_sentence")
            self._lock = threading.Lock()  # one interpreter call at a time: Retriever is thread-safe
            with quiet_native_logs(self.options.quiet):
                S = metadata.image_size
                regions = self.embed_pixels(np.zeros((1, S, S, 3), np.uint8))
                words = self.embed_tokens(np.zeros((1, self.max_words), np.int32))
        except (ValueError, RuntimeError, KeyError, IndexError) as e:
            raise md.ModelFileError(f"{source}: the interpreter cannot run this model ({type(e).__name__}: {e})") from e
        if regions.shape != (self.num_regions, self.dim) or words.shape != (1, self.max_words, self.dim):
            raise md.ModelFileError(
                f"{source}: signatures give regions {regions.shape} and words {words.shape}, the metadata declares ({self.num_regions}, {self.dim}) and (1, {self.max_words}, {self.dim}); re-export the model"
            )
        self.photo_index: PhotoIndex | None = None

    @classmethod
    def from_file(
        cls, path: str | Path, options: RetrieverOptions | None = None, allow_unverified: bool = False
    ) -> "Retriever":
        """Load an alignment model file.

        Raises:
            ModelFileError: missing, damaged, unverified, or not an alignment model (names ``path``).
            NoInterpreterError: no TFLite interpreter installed.
        """
        options = options or RetrieverOptions()
        data, meta = md.read_file(path, options.check_digest, allow_unverified)
        return cls(data, meta, options, str(path))

    @classmethod
    def from_preset(
        cls, name: str = "visual_semantic_alignment_flickr8k", options: RetrieverOptions | None = None
    ) -> "Retriever":
        """A built-in model by name (``edgecap models``). Raises: ValueError naming the built-in models."""
        from edgecap.runtime.presets import preset_path

        return cls.from_file(preset_path(name), options)

    # --- embeddings ---------------------------------------------------------------------------
    def embed_pixels(self, pixels: np.ndarray, unit: bool = True) -> np.ndarray:
        """``uint8 (1, S, S, 3)`` → region vectors ``float32 (R, h)`` (unit length when the model
        was trained so, unless ``unit=False``)."""
        with self._lock:
            regions = self.image_signature(image=pixels)["regions"][0]
        return unit_vectors(regions, unit and self.normalize)

    def embed_image(self, image: ImageInput) -> np.ndarray:
        """Any photo → region vectors ``float32 (R, h)``. Raises ImageLoadError naming the file."""
        return self.embed_pixels(load_image(image, self.metadata.image_size, self.options.max_pixels)[None])

    def embed_tokens(self, tokens: np.ndarray, unit: bool = True) -> np.ndarray:
        """``int32 (B, T)`` word ids (T = ``max_words``, ``<pad>`` after the words) → ``float32 (B, T, h)``
        (unit length when the model was trained so, unless ``unit=False``; 0 at padding)."""
        with self._lock:  # a batch of another size resizes the interpreter's tensors
            words = self.sentence_signature(tokens=np.asarray(tokens, np.int32))["words"]  # 0 at padding
        return unit_vectors(words, unit and self.normalize)

    def tokens(self, text: str) -> list[int]:
        """The word ids of ``text`` (cut to ``max_words``).

        Raises:
            QueryError: no word at all, or none the model knows.
        """
        ids = self.vocab.encode(text, self.max_words)[1:-1]
        if not ids:
            raise QueryError(f"query {text!r} has no words")
        if all(i == self.vocab.unk_id for i in ids):
            raise QueryError(
                f"query {text!r}: none of its words is in the model's vocabulary of {len(self.vocab) - 4} words"
            )
        return ids

    def embed_sentences(self, texts: Sequence[str], batch_size: int = 64, strict: bool = True) -> list[np.ndarray]:
        """Word vectors ``float32 (T_m, h)`` of each text (words only).

        Args:
            strict: refuse a text without any known word (a query); False embeds it as it is
                (``<unk>`` words, or 0 words scoring 0), as an evaluation over fixed references must.

        Raises:
            QueryError: with ``strict``, a text with no known word (names it).
        """
        rows = [self.tokens(t) if strict else self.vocab.encode(t, self.max_words)[1:-1] for t in texts]
        out = []
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            tokens = np.full((len(chunk), self.max_words), self.vocab.pad_id, np.int32)
            for i, r in enumerate(chunk):
                tokens[i, : len(r)] = r
            words = self.embed_tokens(tokens)
            out += [w[: len(r)] for w, r in zip(words, chunk)]
        return out

    # --- a photo collection -------------------------------------------------------------------
    def index(
        self,
        photos: Sequence[str | Path],
        progress: bool = False,
        errors: list[str] | None = None,
        partial: str | Path | None = None,
        save_every: int = 200,
    ) -> PhotoIndex:
        """Embed ``photos`` and keep them as the collection :meth:`search` ranks.

        Args:
            photos: the photos, in index order.
            progress: show a progress bar.
            errors: when given, a photo that cannot be read is skipped and its one-line error
                appended here; without it, the first such photo raises.
            partial: a file (``.npz``) where the work done so far is saved every ``save_every``
                photos, atomically. A build killed and started again with the same photos, model
                and ``partial`` resumes where it was saved; the file is removed once the index
                is whole (:meth:`PhotoIndex.save` then writes the finished index).
            save_every: photos between two saves of ``partial``.

        Raises:
            ValueError: no photos, or none readable. ImageLoadError: an unreadable photo, without ``errors``.
        """
        if not photos:
            raise ValueError("no photos to index")
        from tqdm.auto import tqdm

        names = [str(p) for p in photos]
        arrays = empty_like_index(len(photos), self.num_regions, self.dim)  # (regions, scales, pooled, scales)
        kept: list[str] = []
        failed: list[str] = []
        start = self._resume(partial, names, arrays, kept, failed) if partial else 0

        def so_far(progress_made: dict | None = None) -> PhotoIndex:  # views while in progress, copies at the end
            n = len(kept)
            regions, scales, pooled, pooled_scales = (a[:n] if progress_made else a[:n].copy() for a in arrays)
            digest = self.metadata.flatbuffer_sha256
            return PhotoIndex(list(kept), regions, scales, pooled, pooled_scales, self.dim, digest, progress_made)

        bar = tqdm(total=len(photos), initial=start, desc="indexing photos", unit="img", disable=not progress)
        with bar:
            for i in range(start, len(photos)):
                try:
                    regions = self.embed_image(photos[i])[None]  # (1, R, h)
                except ImageLoadError as e:
                    if errors is None:
                        raise
                    failed.append(str(e))
                else:
                    for target, value in zip(arrays, quantize_photos(regions)):
                        target[len(kept)] = value[0]
                    kept.append(names[i])
                bar.update(1)
                if partial and (i + 1) % save_every == 0 and i + 1 < len(photos):
                    so_far({"photos": names, "done": i + 1, "errors": failed}).save(partial)
        if errors is not None:
            errors.extend(failed)
        if not kept:
            raise ValueError(f"none of the {len(photos)} photos could be read (e.g. {failed[0]})")
        self.photo_index = so_far()
        if partial:
            Path(partial).unlink(missing_ok=True)
        return self.photo_index

    def _resume(self, partial: str | Path, names: list[str], arrays: tuple, kept: list, failed: list) -> int:
        """Photos done by an earlier build saved in ``partial`` (0 when there is none, or it was
        of other photos or another model); their arrays copied into ``arrays``."""
        from edgecap.utils import remove_stale_temporaries

        remove_stale_temporaries(partial)  # a build killed while saving leaves its temporary file
        if not Path(partial).is_file():
            return 0
        try:
            saved = PhotoIndex.load(partial, mmap=False)
        except PhotoIndexError:
            return 0
        p = saved.progress
        if p is None or p["photos"] != names or saved.model_digest != self.metadata.flatbuffer_sha256:
            return 0
        if saved.regions.shape[1:] != arrays[0].shape[1:] or saved.dim != self.dim:
            return 0
        n = len(saved.paths)
        for target, source in zip(arrays, (saved.regions, saved.region_scales, saved.pooled, saved.pooled_scales)):
            target[:n] = source
        kept.extend(saved.paths)
        failed.extend(str(e) for e in p["errors"])
        return int(p["done"])

    def load_index(self, path: str | Path) -> PhotoIndex:
        """Load a saved index (:meth:`PhotoIndex.save`), memory-mapped, as the collection.

        Raises:
            PhotoIndexError: damaged, or built with another model (names ``path``).
        """
        index = PhotoIndex.load(path)
        if (
            index.model_digest != self.metadata.flatbuffer_sha256
            or index.num_regions != self.num_regions
            or index.dim != self.dim
        ):
            raise PhotoIndexError(
                f"{path}: this index was built with another model than {self.source}; build it again with this model"
            )
        self.photo_index = index
        return index

    def _index(self) -> PhotoIndex:
        if self.photo_index is None:
            raise ValueError("no photos indexed: call index(photos) or load_index(path) first")
        return self.photo_index

    def scores(self, texts: Sequence[str], strict: bool = True, block: int = 2048) -> np.ndarray:
        """``float32 (N photos, M texts)`` eq. 8 scores against every indexed photo (their int4
        region vectors, ``block`` photos at a time).

        Raises:
            QueryError: with ``strict``, a text without any known word (see :meth:`embed_sentences`).
            ValueError: nothing indexed.
        """
        index = self._index()
        words = self.embed_sentences(texts, strict=strict)
        return np.concatenate([index.eq8_scores(slice(a, a + block), words) for a in range(0, len(index), block)])

    def search(self, text: str, k: int = 5, candidates: int | None = DEFAULT_CANDIDATES) -> list[Hit]:
        """The ``k`` indexed photos that fit ``text`` best, best first (image search).

        The ``candidates`` photos whose pooled vectors fit the sentence best are ranked by
        eq. 8 (:meth:`PhotoIndex.candidates`); None ranks every photo by eq. 8. Equal scores
        go to the lower index.

        Raises:
            QueryError: see :meth:`tokens`. ValueError: nothing indexed, or ``candidates`` < 1.
        """
        index = self._index()
        words = self.embed_sentences([text])[0]  # (T, h)
        rows, s = index.rank(words, candidates)  # (C,) ascending, (C,)
        order = np.argsort(-s, kind="stable")[:k]
        return [Hit(int(rows[i]), float(s[i]), path=index.paths[rows[i]]) for i in order]

    def annotate(self, photo: ImageInput, sentences: Sequence[str], k: int = 5) -> list[Hit]:
        """The ``k`` of ``sentences`` that fit ``photo`` best, best first (image annotation).

        Raises:
            QueryError: a sentence with no known word. ImageLoadError: unreadable photo.
        """
        s = score_matrix(self.embed_image(photo)[None], self.embed_sentences(sentences))[0]
        order = np.argsort(-s, kind="stable")[:k]
        return [Hit(int(i), float(s[i]), sentence=sentences[i]) for i in order]

    def align(self, photo: ImageInput, sentence: str) -> Alignment:
        """Each word of ``sentence`` with the region of ``photo`` it fits best (the paper's Fig. 5)."""
        ids = self.tokens(sentence)
        words = self.embed_sentences([sentence])[0]
        regions, dots = word_alignment(self.embed_image(photo), words)
        return Alignment([self.vocab.words[i] for i in ids], regions, dots, self.grid, float(dots.max(axis=1).sum()))
