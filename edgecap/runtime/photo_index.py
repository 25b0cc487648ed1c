"""A photo index that grows gently with the collection: int4 region vectors, an int8 pooled
vector per photo to pre-select candidates, one memory-mapped file (no TensorFlow).

Image search with the alignment model ranks photos by Karpathy & Fei-Fei's eq. 8,
``S_kl = Σ_t max_i v_iᵀ s_t`` over every region vector ``v_i`` of a photo (R = 50 of them,
h = 512 dimensions). Kept as float16, that is 51 KB a photo; here, per photo:

- the R region vectors in 4 bits (symmetric, one float32 scale per vector: 13.0 KB);
- one *pooled* vector ``p = v_whole + mean_i v_i`` (the whole-image region plus the mean of
  all of them) in int8 with one scale (0.5 KB).

A query first scores every photo by ``pᵀ Σ_t s_t`` (one int8 matrix–vector product, read in
chunks) and keeps the ``candidates`` best, then ranks those by eq. 8 on their int4 region
vectors. This is the two-stage ("pre-select, then re-rank exactly") search of late-interaction
retrieval (ColBERT, Khattab & Zaharia, SIGIR 2020, §3.6), with a pooled vector in place of
its per-token nearest-neighbour stage: the pooled product scans 100,000 photos in tens of
milliseconds, so no graph index is kept (docs/runtime.md#photo-index).

The file is an uncompressed ``.npz`` whose arrays are memory-mapped, not read whole: a
query touches the pooled vectors and the candidates' regions only.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INDEX_FORMAT = 2  #: format 1 (float16 region vectors) still loads, into memory
INT4_MAX = 7  #: int4 values are -7..7 (symmetric), stored as the codes 1..15
DEFAULT_CANDIDATES = 200  #: photos re-ranked by eq. 8 per query (chosen on Flickr8k dev: docs/runtime.md#photo-index)
_CHUNK = 16384  #: photos per block of the pre-selection product

ENTRIES = {  # format → the arrays of its file
    1: {"header.npy", "regions.npy"},
    2: {"header.npy", "regions.npy", "region_scales.npy", "pooled.npy", "pooled_scales.npy"},
}


class PhotoIndexError(ValueError):
    """A photo index that is missing, damaged, empty, or built with another model (names the file)."""


def quantize_int4(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 4-bit quantization of each vector along the last axis, two codes per byte.

    Args:
        x: ``float (..., h)``.

    Returns:
        ``(codes uint8 (..., ceil(h/2)), scales float32 (...))``: ``x ≈ (c - 8) · scale`` with
        ``c`` in 1..15 (offset binary: -7..7 plus 8); dimension ``2j`` in the low nibble of
        byte ``j``, ``2j + 1`` in the high one (an odd h is padded with a 0).
    """
    x = np.asarray(x, np.float32)
    scales = np.abs(x).max(axis=-1) / INT4_MAX
    safe = np.where(scales > 0, scales, 1.0)[..., None]
    q = (np.clip(np.rint(x / safe), -INT4_MAX, INT4_MAX) + 8).astype(np.uint8)  # 1..15
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.full(q.shape[:-1] + (1,), 8, np.uint8)], axis=-1)
    return q[..., 0::2] | (q[..., 1::2] << 4), scales.astype(np.float32)


def dequantize_int4(codes: np.ndarray, scales: np.ndarray, dim: int) -> np.ndarray:
    """The inverse of :func:`quantize_int4`: ``float32 (..., dim)``."""
    codes = np.asarray(codes, np.uint8)
    q = np.stack([codes & 15, codes >> 4], axis=-1).reshape(codes.shape[:-1] + (2 * codes.shape[-1],))[..., :dim]
    return (q.astype(np.float32) - 8) * np.asarray(scales, np.float32)[..., None]


def quantize_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of each vector along the last axis: ``(int8 (..., h), float32 scales (...))``."""
    x = np.asarray(x, np.float32)
    scales = np.abs(x).max(axis=-1) / 127.0
    safe = np.where(scales > 0, scales, 1.0)[..., None]
    return np.clip(np.rint(x / safe), -127, 127).astype(np.int8), scales.astype(np.float32)


def pooled_vectors(regions: np.ndarray) -> np.ndarray:
    """``float32 (N, h)``: each photo's last region vector (the whole image, in the alignment
    model's layout) plus the mean of all its region vectors ``float (N, R, h)``."""
    regions = np.asarray(regions, np.float32)
    return regions[:, -1] + regions.mean(axis=1)


def quantize_photos(regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The index arrays of photos' region vectors ``float (n, R, h)``: ``(regions, region_scales,
    pooled, pooled_scales)`` as in :class:`PhotoIndex`."""
    regions = np.asarray(regions, np.float32)
    return (*quantize_int4(regions), *quantize_int8(pooled_vectors(regions)))


@dataclass
class PhotoIndex:
    """Region vectors of a photo collection, for one model.

    Attributes:
        paths: the photos, in index order (N).
        regions: ``uint8 (N, R, ceil(h/2))`` int4 region vectors (:func:`quantize_int4`).
        region_scales: ``float32 (N, R)``.
        pooled: ``int8 (N, h)`` the pre-selection vectors (:func:`pooled_vectors`).
        pooled_scales: ``float32 (N,)``.
        dim: h.
        model_digest: the SHA-256 digest of the model's weights (its ``flatbuffer_sha256``):
            an index only answers queries of the model that built it.
        progress: of an unfinished index (:meth:`Retriever.index` with ``partial``): every
            photo asked for (``"photos"``), how many are done (``"done"``, the unreadable
            counted) and the errors (``"errors"``); None for a finished index.
    """

    paths: list[str]
    regions: np.ndarray
    region_scales: np.ndarray
    pooled: np.ndarray
    pooled_scales: np.ndarray
    dim: int
    model_digest: str
    progress: dict | None = None

    @classmethod
    def from_vectors(
        cls, paths: list[str], regions: np.ndarray, model_digest: str, progress: dict | None = None
    ) -> "PhotoIndex":
        """Quantize ``float (N, R, h)`` region vectors into an index (1,024 photos at a time, so a
        large float16 index of format 1 is never held as float32 whole)."""
        n, r, dim = np.shape(regions)
        arrays = empty_like_index(n, r, dim)
        for a in range(0, n, 1024):
            for target, value in zip(arrays, quantize_photos(regions[a : a + 1024])):
                target[a : a + len(value)] = value
        codes, scales, pooled, pooled_scales = arrays
        return cls(list(paths), codes, scales, pooled, pooled_scales, dim, model_digest, progress)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def memory_mapped(self) -> bool:
        """Its region vectors are a view of the file it was loaded from."""
        return isinstance(self.regions, np.memmap)

    @property
    def num_regions(self) -> int:
        return int(self.regions.shape[1])

    def region_vectors(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """``float32 (n, R, h)`` the region vectors of photos ``rows`` (dequantized)."""
        return dequantize_int4(self.regions[rows], self.region_scales[rows], self.dim)

    def region_dots(self, rows: np.ndarray | slice, words: np.ndarray) -> np.ndarray:
        """``float32 (n, R, W)``: ``v_iᵀ s_t`` of every region vector of photos ``rows`` with every
        word vector of ``words float (W, h)``, straight from the int4 codes: the low nibbles
        (even dimensions) and the high ones (odd dimensions) are each cast to float32 as they
        are masked and meet their half of the words; the offset 8 and the scale are applied to
        the products, so no dequantized copy of the regions is made."""
        codes = np.asarray(self.regions[rows])  # (n, R, H) uint8, H = ceil(h/2)
        scales = np.asarray(self.region_scales[rows])  # (n, R)
        n, R, H = codes.shape
        w = np.zeros((2 * H, len(words)), np.float32)  # (2H, W), the padded dimension 0
        w[: self.dim] = np.asarray(words, np.float32).T
        even, odd = w[0::2], w[1::2]  # (H, W) each
        nibble = np.empty((n * R, H), np.float32)
        np.bitwise_and(codes.reshape(n * R, H), 15, out=nibble, casting="unsafe")  # dims 0, 2, 4, ...
        dots = nibble @ even  # (n·R, W)
        np.right_shift(codes.reshape(n * R, H), 4, out=nibble, casting="unsafe")  # dims 1, 3, 5, ...
        dots += nibble @ odd
        dots -= 8 * w.sum(axis=0)  # the offset of every code
        return dots.reshape(n, R, -1) * scales[..., None]

    def eq8_scores(self, rows: np.ndarray | slice, sentences: list[np.ndarray]) -> np.ndarray:
        """``float32 (n, M)``: eq. 8, ``Σ_t max_i v_iᵀ s_t``, of photos ``rows`` with M sentences
        (each ``float (T_m, h)``; a sentence of 0 words scores 0)."""
        lengths = np.array([len(s) for s in sentences], np.int64)
        n = len(range(len(self.paths))[rows]) if isinstance(rows, slice) else len(rows)
        out = np.zeros((n, len(sentences)), np.float32)
        worded = lengths > 0
        if worded.any():
            words = np.concatenate([np.asarray(s, np.float32) for s in sentences if len(s)])  # (W, h)
            best = self.region_dots(rows, words).max(axis=1)  # (n, W): each word's best region
            firsts = np.cumsum(lengths[worded]) - lengths[worded]  # each sentence's first word in W
            out[:, worded] = np.add.reduceat(best, firsts, axis=1)
        return out

    def preselect_scores(self, query: np.ndarray) -> np.ndarray:
        """``float32 (N,)``: ``pᵀ q`` for every photo's pooled vector ``p`` and ``query float (h,)``
        (the sum of a sentence's word vectors), read in blocks of 16,384 photos."""
        q = np.asarray(query, np.float32)
        out = np.empty(len(self.paths), np.float32)
        for a in range(0, len(out), _CHUNK):
            b = min(a + _CHUNK, len(out))
            out[a:b] = (self.pooled[a:b].astype(np.float32) @ q) * self.pooled_scales[a:b]
        return out

    def candidates(self, words: np.ndarray, n: int | None = DEFAULT_CANDIDATES) -> np.ndarray:
        """The rows, ascending, of the ``n`` photos whose pooled vectors fit ``words float (T, h)``
        best (every row when ``n`` is None or the index holds no more)."""
        if n is None or n >= len(self.paths):
            return np.arange(len(self.paths))
        if n < 1:
            raise ValueError(f"candidates must be >= 1, got {n}")
        pre = self.preselect_scores(np.asarray(words, np.float32).sum(axis=0))
        return np.sort(np.argpartition(-pre, n - 1)[:n])

    def rank(self, words: np.ndarray, candidates: int | None = DEFAULT_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
        """Image search for one sentence ``words float (T, h)``: the :meth:`candidates` and their
        eq. 8 scores, ``(rows int (C,) ascending, scores float32 (C,))``.

        Raises:
            ValueError: ``candidates`` < 1.
        """
        rows = self.candidates(words, candidates)
        return rows, self.eq8_scores(rows, [words])[:, 0]

    def save(self, path: str | Path) -> Path:
        """Write the index as one uncompressed ``.npz`` (atomically: a crash leaves no
        half-written file).

        Raises:
            OSError: the folder does not exist or is not writable (names ``path``).
        """
        from edgecap.utils import atomic_path

        fields = {"format": INDEX_FORMAT, "model_digest": self.model_digest, "dim": self.dim, "paths": self.paths}
        header = json.dumps(fields if self.progress is None else {**fields, "progress": self.progress})
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez(
                    f,
                    header=np.frombuffer(header.encode(), np.uint8),
                    regions=np.ascontiguousarray(self.regions),
                    region_scales=np.ascontiguousarray(self.region_scales),
                    pooled=np.ascontiguousarray(self.pooled),
                    pooled_scales=np.ascontiguousarray(self.pooled_scales),
                )
        except OSError as e:
            raise OSError(f"{path}: cannot write the index ({e.strerror or e})") from None
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> "PhotoIndex":
        """Read an index written by :meth:`save`, every size checked before anything is read;
        with ``mmap``, the arrays are memory-mapped views of the file. A format-1 index
        (float16 region vectors) is quantized into memory.

        Raises:
            PhotoIndexError: a missing, special, damaged, edited or foreign file (names ``path``).
        """
        path = Path(path)
        try:
            kind = os.stat(path).st_mode
        except FileNotFoundError:
            raise PhotoIndexError(f"{path}: index file not found") from None
        except OSError as e:
            raise PhotoIndexError(f"{path}: cannot read the index ({e.strerror or e})") from None
        if not stat.S_ISREG(kind):
            raise PhotoIndexError(f"{path}: not an index file (a folder or special file)")
        try:
            arrays = _member_arrays(path, mmap)
            header = np.asarray(arrays["header"])
            if header.dtype != np.uint8 or header.ndim != 1:
                raise ValueError(f"header is {header.dtype} {header.shape}, expected uint8 bytes")
            header = json.loads(header.tobytes().decode("utf-8"))
        except PhotoIndexError:
            raise
        except (OSError, ValueError, KeyError, EOFError, RecursionError, zipfile.BadZipFile, UnicodeDecodeError) as e:
            raise PhotoIndexError(f"{path}: not an edgecap photo index ({type(e).__name__}: {e})") from None
        fmt = header.get("format") if isinstance(header, dict) else None
        if fmt not in ENTRIES or set(arrays) != {n[:-4] for n in ENTRIES[fmt]}:
            raise PhotoIndexError(
                f"{path}: unknown index format {fmt if isinstance(header, dict) else type(header).__name__!r}"
                if fmt not in ENTRIES
                else f"{path}: not an edgecap photo index (arrays {sorted(arrays)} for format {fmt})"
            )
        paths, model_digest, progress = header.get("paths"), header.get("model_digest"), header.get("progress")
        if (
            not isinstance(paths, list)
            or not all(isinstance(x, str) for x in paths)
            or not isinstance(model_digest, str)
        ):
            raise PhotoIndexError(
                f"{path}: damaged index header (paths must be a list of strings, model_digest a string)"
            )
        if progress is not None and not (
            isinstance(progress, dict)
            and isinstance(progress.get("photos"), list)
            and isinstance(progress.get("done"), int)
            and isinstance(progress.get("errors"), list)
        ):
            raise PhotoIndexError(f"{path}: damaged index header (progress)")
        if fmt == 1:
            regions = arrays["regions"]
            if regions.dtype != np.float16 or regions.ndim != 3 or len(regions) != len(paths):
                raise PhotoIndexError(
                    f"{path}: {len(paths)} photos but region vectors {regions.dtype} {regions.shape}, expected float16 ({len(paths)}, R, h)"
                )
            return cls.from_vectors(paths, regions, model_digest, progress)
        regions, region_scales, pooled, pooled_scales, dim = _checked_arrays(
            path, arrays, len(paths), header.get("dim")
        )
        return cls(paths, regions, region_scales, pooled, pooled_scales, dim, model_digest, progress)


def _checked_arrays(path: Path, a: dict, n: int, dim) -> tuple:
    """The format-2 arrays, their dtypes and shapes checked against each other."""
    regions, scales, pooled, pooled_scales = a["regions"], a["region_scales"], a["pooled"], a["pooled_scales"]
    if not isinstance(dim, int) or dim < 1:
        raise PhotoIndexError(f"{path}: damaged index header (dim must be a positive integer)")
    expected = {
        "regions": (regions, np.uint8, 3, (n, None, (dim + 1) // 2)),
        "region_scales": (scales, np.float32, 2, (n, regions.shape[1] if regions.ndim == 3 else None)),
        "pooled": (pooled, np.int8, 2, (n, dim)),
        "pooled_scales": (pooled_scales, np.float32, 1, (n,)),
    }
    for name, (array, dtype, ndim, shape) in expected.items():
        if (
            array.dtype != dtype
            or array.ndim != ndim
            or any(s is not None and s != d for s, d in zip(shape, array.shape))
        ):
            want = ", ".join("R" if s is None else str(s) for s in shape)
            raise PhotoIndexError(
                f"{path}: {n} photos of {dim} dimensions but {name} is {array.dtype} {array.shape}, expected {np.dtype(dtype)} ({want})"
            )
    return regions, scales, pooled, pooled_scales, dim


def _member_arrays(path: Path, mmap: bool) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed ``.npz`` (``np.savez``), memory-mapped or read; no entry
    may be compressed, hold an object array, or declare more than it holds.

    Raises:
        PhotoIndexError: entries other than a known format's, a compressed entry, or sizes
            beyond the file's.
    """
    size = path.stat().st_size
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        infos = zf.infolist()
        names = {i.filename for i in infos}
        if len(names) != len(infos) or not any(names == e for e in ENTRIES.values()):
            raise PhotoIndexError(
                f"{path}: not an edgecap photo index (entries {sorted(names)[:6]}, expected {sorted(ENTRIES[INDEX_FORMAT])})"
            )
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
                raise PhotoIndexError(
                    f"{path}: damaged index ({info.filename} is compressed or declares {info.file_size:,} bytes in a {size:,}-byte file)"
                )
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                raise PhotoIndexError(f"{path}: damaged index ({info.filename} has no local header)")
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + name_length + extra_length
            f.seek(start)
            try:
                version = np.lib.format.read_magic(f)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(f)
            except (ValueError, SyntaxError, tokenize.TokenError, EOFError) as e:
                raise PhotoIndexError(
                    f"{path}: damaged index ({info.filename}: unreadable array header, {e})"
                ) from None
            offset = f.tell()
            nbytes = math.prod(shape) * dtype.itemsize
            if dtype.hasobject or fortran or offset + nbytes > start + info.file_size:
                raise PhotoIndexError(
                    f"{path}: damaged index ({info.filename} declares {dtype} {shape}, more than it holds)"
                )
            name = info.filename[:-4]
            if mmap and nbytes:
                out[name] = np.memmap(path, dtype, "r", offset, shape)
            else:
                f.seek(offset)
                out[name] = np.frombuffer(f.read(nbytes), dtype).reshape(shape)
    return out


def empty_like_index(num_photos: int, num_regions: int, dim: int) -> tuple[np.ndarray, ...]:
    """Arrays for ``num_photos`` photos, filled as they are embedded: ``(regions, region_scales,
    pooled, pooled_scales)`` as in :class:`PhotoIndex`."""
    return (
        np.zeros((num_photos, num_regions, (dim + 1) // 2), np.uint8),
        np.zeros((num_photos, num_regions), np.float32),
        np.zeros((num_photos, dim), np.int8),
        np.zeros((num_photos,), np.float32),
    )


__all__ = [
    "DEFAULT_CANDIDATES",
    "INDEX_FORMAT",
    "PhotoIndex",
    "PhotoIndexError",
    "dequantize_int4",
    "quantize_int4",
    "quantize_int8",
]
