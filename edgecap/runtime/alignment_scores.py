"""Eq. 8 of Karpathy & Fei-Fei (CVPR 2015) in NumPy: image–sentence scores and word–region
alignments from region and word vectors (no TensorFlow).

``S_kl = Σ_{t ∈ g_l} max_{i ∈ g_k} v_iᵀ s_t``: each word of sentence l takes the region of
image k it fits best, and the sentence scores the sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def score_matrix(regions: np.ndarray, sentences: Sequence[np.ndarray], max_columns: int = 2048) -> np.ndarray:
    """Scores of every image with every sentence.

    Args:
        regions: ``float (N, R, h)`` region vectors of N images.
        sentences: M arrays ``float (T_m, h)``, the word vectors of each sentence (words only,
            no padding); a sentence of 0 words scores 0.
        max_columns: words multiplied at once (bounds the memory: ``N·R·max_columns`` floats).

    Returns:
        ``float32 (N, M)``.

    Raises:
        ValueError: vectors of different sizes h.
    """
    regions = np.asarray(regions, np.float32)
    N, R, h = regions.shape
    flat = regions.reshape(N * R, h)
    out = np.zeros((N, len(sentences)), np.float32)
    start = 0
    while start < len(sentences):
        stop, width = start, 0
        while stop < len(sentences) and (width == 0 or width + len(sentences[stop]) <= max_columns):
            width += len(sentences[stop])
            stop += 1
        group = [np.asarray(s, np.float32) for s in sentences[start:stop]]
        if any(s.ndim != 2 or (len(s) and s.shape[1] != h) for s in group):
            raise ValueError(f"word vectors must be (T, {h}) like the region vectors")
        lengths = np.array([len(s) for s in group])
        if lengths.sum():
            words = np.concatenate([s for s in group if len(s)])  # (W, h)
            best = (flat @ words.T).reshape(N, R, -1).max(axis=1)  # (N, W): each word's best region
            ends = np.cumsum(lengths)
            sums = np.add.reduceat(best, np.r_[0, ends[:-1]][lengths > 0], axis=1)
            out[:, start + np.flatnonzero(lengths > 0)] = sums
        start = stop
    return out


def word_alignment(regions: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For one image and one sentence, the region each word aligns to (the arg max of eq. 8).

    Args:
        regions: ``float (R, h)``.
        words: ``float (T, h)``.

    Returns:
        ``(int (T,) region index per word, float32 (T, R) the dot products v_iᵀ s_t)``.
    """
    dots = np.asarray(words, np.float32) @ np.asarray(regions, np.float32).T  # (T, R)
    return dots.argmax(axis=1), dots


def unit_vectors(x: np.ndarray, enabled: bool = True) -> np.ndarray:
    """``x`` (float, last axis h) scaled to unit length along its last axis (zero vectors stay
    zero); ``enabled=False`` returns it unchanged. For models trained with ``model.normalize``."""
    x = np.asarray(x, np.float32)
    if not enabled:
        return x
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
