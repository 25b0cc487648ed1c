"""On-disk cache of frozen-encoder annotation vectors.

While the encoder is frozen, its output for an image never changes: computing it once and
reading it back turns a CPU training epoch from hours into minutes. A cache file is keyed by
the encoder name, the identity of its weights (sha256 of the file, or ``"imagenet"``), the
image size, the exact image list and whether the photos are mirrored, so changing any of them
computes a new file.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from edgecap.data.readers import CaptionedImage
from edgecap.runtime.preprocessing import load_image
from edgecap.utils import atomic_path, sha256_file


@dataclass
class SplitData:
    """The photos of one split with their cached annotation vectors, row for row."""

    items: list[CaptionedImage]
    features: (
        np.ndarray
    )  # (N, L, D) float16 annotation vectors, or with model.fine_tune_from (N, g, g, C) (see ShowAttendTell.annotate)
    tags: dict[str, np.ndarray] | None = None  #: a tag-conditioned model's tag tensors by name, (N, K) each

    @property
    def references(self) -> dict[str, list[str]]:
        return {it.image_id: it.captions for it in self.items}


CACHE_ENV = "EDGECAP_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$EDGECAP_CACHE_DIR`` or ``~/.cache/edgecap``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edgecap")


def weights_identity(weights: str | None) -> str:
    """A string that changes whenever the encoder weights change."""
    if weights and Path(weights).is_file():
        return "sha256:" + sha256_file(weights)
    return str(weights)


def cache_key(
    backbone: str, weights_id: str, image_size: int, items: Sequence[CaptionedImage], mirrored: bool = False
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([backbone, weights_id, image_size, 1] + (["mirrored"] if mirrored else [])).encode())
    for it in items:
        h.update(str(it.path).encode() + b"\0")
    return h.hexdigest()[:24]


def encode_images(
    encoder,
    items: Sequence[CaptionedImage],
    image_size: int,
    batch_size: int = 32,
    desc: str = "encoding images",
    mirrored: bool = False,
) -> np.ndarray:
    """Run ``encoder`` over ``items``; returns ``float16 (N, L, D)`` annotation vectors.

    Images are read with :func:`edgecap.runtime.preprocessing.load_image` on a thread pool;
    ``mirrored`` flips each photo left to right first.
    """
    out: np.ndarray | None = None
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool,
        tqdm(total=len(items), desc=desc, unit="img") as bar,
    ):
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            pixels = np.stack(list(pool.map(lambda it: load_image(it.path, image_size), chunk)))  # (b, S, S, 3) uint8
            if mirrored:
                pixels = np.ascontiguousarray(pixels[:, :, ::-1])
            feats = np.asarray(encoder(pixels, training=False), dtype=np.float16)  # (b, L, D)
            if out is None:
                out = np.empty((len(items),) + feats.shape[1:], np.float16)
            out[start : start + len(chunk)] = feats
            bar.update(len(chunk))
    assert out is not None
    return out


def cached_features(
    make_encoder,
    backbone: str,
    weights: str | None,
    image_size: int,
    items: Sequence[CaptionedImage],
    cache_dir: str | Path | None = None,
    split: str = "",
    mirrored: bool = False,
) -> np.ndarray:
    """Annotation vectors for ``items``, from the cache when present, else computed and stored.

    Args:
        make_encoder: zero-argument callable returning the encoder; called only on a cache miss.
        mirrored: encode the photos flipped left to right (training-time augmentation).

    Returns:
        read-only ``float16`` memory map ``(N, L, D)`` in the order of ``items``.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = cache_key(backbone, weights_identity(weights), image_size, items, mirrored)
    name = (split or "images").replace(":", "-") + ("-mirrored" if mirrored else "")
    path = cache_dir / "features" / f"{backbone}-{name}-{key}.npy"
    if not path.is_file():
        feats = encode_images(make_encoder(), items, image_size, desc=f"caching {name} features", mirrored=mirrored)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, feats)
    return np.load(path, mmap_mode="r")
