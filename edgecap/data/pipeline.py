"""``tf.data`` pipelines over cached annotation vectors and encoded captions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from edgecap.data.readers import CaptionedImage
from edgecap.data.vocabulary import Vocabulary


def encode_captions(items: Sequence[CaptionedImage], vocab: Vocabulary, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Every reference caption as ids, padded with ``<pad>``.

    Returns:
        ``(image_index int32 (N,), captions int32 (N, max_length + 2))``: row n is
        ``<start> w1 .. wk <end> <pad>..`` for an image of ``items[image_index[n]]``.
    """
    index, rows = [], []
    for i, item in enumerate(items):
        for caption in item.captions:
            ids = vocab.encode(caption, max_length)
            rows.append(ids + [vocab.pad_id] * (max_length + 2 - len(ids)))
            index.append(i)
    return np.asarray(index, np.int32), np.asarray(rows, np.int32)


def caption_dataset(features: np.ndarray, image_index: np.ndarray, captions: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0) -> tf.data.Dataset:
    """Batches of ``({"annotations": float16 (B, L, D), "captions": int32 (B, T+1)}, targets int32 (B, T))``.

    ``features`` may be a memory map (read per batch). Teacher forcing: targets are ``captions[:, 1:]``.
    """
    gather = _row_reader(features)

    def load(idx, caps):
        return {"annotations": gather(idx), "captions": caps}, caps[:, 1:]

    ds = tf.data.Dataset.from_tensor_slices((image_index, captions))
    if shuffle:
        ds = ds.shuffle(len(image_index), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=shuffle).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def image_dataset(features: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0) -> tf.data.Dataset:
    """Batches of ``(annotations float16 (B, L, D), image_index int32 (B,))``, one row per image.

    For objectives that score whole generated captions per image (self-critical training).
    """
    gather = _row_reader(features)
    ds = tf.data.Dataset.range(len(features)).map(lambda i: tf.cast(i, tf.int32))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=shuffle).map(lambda idx: (gather(idx), idx), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def _row_reader(features: np.ndarray):
    """A graph function ``int32 (B,) → float16 (B, L, D)`` reading rows of ``features`` on the host.

    ``features`` may be a memory map: rows are gathered per batch, so the whole cache never
    has to be a graph constant.
    """
    L, D = features.shape[1:]

    def gather(idx):
        order = np.argsort(idx)  # sorted reads from the memory map, then back to batch order
        out = np.empty((len(idx), L, D), np.float16)
        out[order] = features[idx[order]]
        return out

    def read(idx):
        feats = tf.numpy_function(gather, [idx], tf.float16)
        feats.set_shape((None, L, D))
        return feats

    return read
