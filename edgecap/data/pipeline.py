"""``tf.data`` pipelines over cached annotation vectors and encoded captions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from edgecap.data.readers import CaptionedImage
from edgecap.runtime.objects import objects, reference_objects
from edgecap.runtime.vocabulary import Vocabulary


def encode_captions(
    items: Sequence[CaptionedImage], vocab: Vocabulary, max_length: int
) -> tuple[np.ndarray, np.ndarray]:
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


def encode_texts(texts: Sequence[str], vocab: Vocabulary, max_length: int) -> np.ndarray:
    """Unpaired sentences as :func:`encode_captions` encodes captions: ``int32 (N, max_length + 2)``."""
    rows = [ids + [vocab.pad_id] * (max_length + 2 - len(ids)) for ids in (vocab.encode(t, max_length) for t in texts)]
    return np.asarray(rows, np.int32).reshape(-1, max_length + 2)


def person_free(items: Sequence[CaptionedImage], image_index: np.ndarray, texts: Sequence[str] = ()):
    """Which training examples show no person, for ``train.person_free_share``.

    A photo shows none when fewer than two of its references name one (CHAIR's person words,
    :func:`edgecap.runtime.objects.objects`; issue 44's count of the data's person prior); a
    sentence when it names none.

    Returns:
        ``(bool (N,), bool (M,))``: one per row of ``image_index`` (its photo's), one per text.
    """
    photos = np.asarray(["person" not in reference_objects(it.captions, min_references=2) for it in items], bool)
    return photos[image_index], np.asarray(["person" not in objects(t) for t in texts], bool).reshape(-1)


def encode_sentences(
    items: Sequence[CaptionedImage], vocab: Vocabulary, max_words: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every reference caption as word ids only (no ``<start>``/``<end>``), for a sentence encoder.

    Returns:
        ``(image_index int32 (N,), tokens int32 (N, max_words))``: row n is ``w1 .. wk <pad> ..``
        (cut after ``max_words`` words) for an image of ``items[image_index[n]]``.
    """
    index, rows = [], []
    for i, item in enumerate(items):
        for caption in item.captions:
            ids = vocab.encode(caption, max_words)[1:-1]
            rows.append(ids + [vocab.pad_id] * (max_words - len(ids)))
            index.append(i)
    return np.asarray(index, np.int32).reshape(-1), np.asarray(rows, np.int32).reshape(-1, max_words)


def sentence_dataset(
    features: np.ndarray,
    image_index: np.ndarray,
    tokens: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of ``{"annotations": float16 (B, L, D), "tokens": int32 (B, T), "image_index": int32 (B,)}``:
    image–sentence pairs for a ranking loss (``image_index`` tells which pairs share a photo).
    """
    gather = _row_reader(features)
    ds = tf.data.Dataset.from_tensor_slices((image_index, tokens))
    if shuffle:
        ds = ds.shuffle(len(image_index), seed=seed, reshuffle_each_iteration=True)
    load = lambda idx, toks: {"annotations": gather(idx), "tokens": toks, "image_index": idx}  # noqa: E731
    return ds.batch(batch_size, drop_remainder=shuffle).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def caption_dataset(
    features: np.ndarray,
    image_index: np.ndarray,
    captions: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    mirrored: np.ndarray | None = None,
    mirror_ids: np.ndarray | None = None,
    text_captions: np.ndarray | None = None,
    text_fraction: float = 0.0,
    tags: dict[str, np.ndarray] | None = None,
    text_tags: dict[str, np.ndarray] | None = None,
    annotation_dropout: float = 0.0,
    favoured: np.ndarray | None = None,
    text_favoured: np.ndarray | None = None,
    favoured_share: float = 0.0,
) -> tf.data.Dataset:
    """Batches of ``({"annotations": float16 (B, L, D), "captions": int32 (B, T+1)}, targets int32 (B, T))``.

    ``features`` may be a memory map (read per batch). Teacher forcing: targets are ``captions[:, 1:]``.
    With ``text_captions``, each example is a sentence of unpaired text with probability
    ``text_fraction``, its annotation vectors all zero (no photo): the decoder learns the
    language of the text (words and sentence shapes the paired captions lack) beside the
    captioning task (the language side of Hendricks et al. 2016 and Venugopalan et al. 2017,
    trained jointly as in the latter).

    Args:
        mirrored: optional ``float16 (N, L, D)`` annotation vectors of the same photos flipped
            left to right. Each example then reads them with probability 0.5 (horizontal-flip
            augmentation), its caption mapped through ``mirror_ids``.
        mirror_ids: ``int32 (V,)`` token map applied to the captions of mirrored examples
            (:func:`mirror_token_map`); identity when omitted.
        text_captions: ``int32 (M, T+1)`` unpaired sentences, encoded as ``captions``.
        text_fraction: share of examples drawn from ``text_captions`` (0..1, exclusive of 1).
        tags: a tag-conditioned model's tag tensors of the photos, by name, ``(N, K)`` each
            (:func:`edgecap.data.tags.tag_arrays`): each example's inputs then hold its photo's.
        text_tags: the same for the sentences of ``text_captions``, ``(M, K)`` each (pseudo-tags).
        annotation_dropout: share of paired examples whose annotation vectors are zeroed (the
            tags kept), so that the decoder learns to write from the tags alone.
        favoured: ``bool (E,)``, one per paired example (a row of ``image_index``): the examples
            drawn with probability ``favoured_share`` (the others with the rest), whatever their
            own share; e.g. the photos without people, against a person prior of the data.
        text_favoured: ``bool (M,)``, the same for the sentences of ``text_captions``.
        favoured_share: share of paired examples (and of sentences) drawn from the favoured
            ones; 0 = every example as often as the others. Needs ``shuffle`` (an endless draw).

    Raises:
        ValueError: ``mirrored`` does not match ``features`` in shape; ``text_fraction`` out of
            range or without ``text_captions`` of the captions' width; tags without rows for
            every photo (and sentence), or an ``annotation_dropout`` outside [0, 1); a
            ``favoured_share`` outside [0, 1), without ``shuffle``, or without both masks (or
            with an empty side).
    """
    if mirrored is not None and mirrored.shape != features.shape:
        raise ValueError(f"mirrored features have shape {mirrored.shape}, expected {features.shape}")
    if text_fraction and (
        not 0.0 < text_fraction < 1.0 or text_captions is None or text_captions.shape[1:] != captions.shape[1:]
    ):
        raise ValueError(
            f"text_fraction must be in (0, 1) with text_captions shaped (M, {captions.shape[1]}), got {text_fraction}"
        )
    tag_names = sorted(tags or {})
    if tags is not None and (
        any(len(v) != len(features) for v in tags.values())
        or (
            text_fraction
            and (
                text_tags is None
                or sorted(text_tags) != tag_names
                or any(len(v) != len(text_captions) for v in text_tags.values())
            )
        )
    ):
        raise ValueError(f"tags need one row per photo ({len(features)}) and, with text, per sentence")
    if not 0.0 <= annotation_dropout < 1.0:
        raise ValueError(f"annotation_dropout must be in [0, 1), got {annotation_dropout}")
    if favoured_share:
        _check_favoured(favoured_share, shuffle, favoured, len(image_index))
        if text_fraction:
            _check_favoured(favoured_share, shuffle, text_favoured, len(text_captions))
    gather = _row_reader(features, mirrored)

    def load(idx, caps, *tag_rows):
        if mirrored is None:
            annotations = gather(idx)
        else:
            flip = tf.random.uniform(tf.shape(idx)) < 0.5  # (B,)
            if mirror_ids is not None:
                caps = tf.where(flip[:, None], tf.gather(tf.constant(mirror_ids, tf.int32), caps), caps)
            annotations = gather(idx, flip)
        if annotation_dropout:  # (B, ...) rows zeroed: a photo seen through its tags alone
            keep = tf.cast(tf.random.uniform(tf.shape(idx)) >= annotation_dropout, annotations.dtype)
            annotations = annotations * tf.reshape(keep, [-1] + [1] * (len(annotations.shape) - 1))
        inputs = {"annotations": annotations, "captions": caps, **dict(zip(tag_names, tag_rows))}
        return inputs, caps[:, 1:]

    paired = (image_index, captions, *(tags[n][image_index] for n in tag_names))
    if favoured_share:
        ds = _favouring(paired, favoured, favoured_share, seed)
    else:
        ds = tf.data.Dataset.from_tensor_slices(paired)
        if shuffle:
            ds = ds.shuffle(len(image_index), seed=seed, reshuffle_each_iteration=True)
    if text_fraction:  # image index -1: a zero row (no photo)
        text_rows = (np.full(len(text_captions), -1, np.int32), text_captions, *(text_tags[n] for n in tag_names))
        if favoured_share:
            text = _favouring(text_rows, text_favoured, favoured_share, seed + 1)
        else:
            text = tf.data.Dataset.from_tensor_slices(text_rows)
            text = text.shuffle(len(text_captions), seed=seed + 1, reshuffle_each_iteration=True)
        ds = tf.data.Dataset.sample_from_datasets(
            [ds.repeat(), text.repeat()], [1.0 - text_fraction, text_fraction], seed=seed
        )
    return ds.batch(batch_size, drop_remainder=shuffle).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def _check_favoured(share: float, shuffle: bool, mask: np.ndarray | None, rows: int) -> None:
    if not 0.0 < share < 1.0 or not shuffle:
        raise ValueError(f"favoured_share must be in (0, 1) and needs shuffle=True, got {share} (shuffle={shuffle})")
    if mask is None or mask.shape != (rows,) or mask.all() or not mask.any():
        shape = None if mask is None else mask.shape
        raise ValueError(f"favoured_share needs a bool mask of ({rows},) with both kinds of rows, got {shape}")


def _favouring(rows: tuple[np.ndarray, ...], mask: np.ndarray, share: float, seed: int) -> tf.data.Dataset:
    """An endless shuffled draw of ``rows`` whose examples of ``mask`` come with probability ``share``."""
    sides = []
    for k, pick in enumerate((~mask, mask)):
        side = tf.data.Dataset.from_tensor_slices(tuple(r[pick] for r in rows))
        sides.append(side.shuffle(int(pick.sum()), seed=seed + 7 * k, reshuffle_each_iteration=True).repeat())
    return tf.data.Dataset.sample_from_datasets(sides, [1.0 - share, share], seed=seed)


def mirror_token_map(vocab: Vocabulary, pairs: Sequence[tuple[str, str]] = (("left", "right"),)) -> np.ndarray:
    """``int32 (V,)`` token map for mirrored photos: each word of ``pairs`` becomes its partner.

    Words of a pair missing from ``vocab`` are left alone.
    """
    ids = np.arange(len(vocab), dtype=np.int32)
    for a, b in pairs:
        i, j = vocab.id_of(a), vocab.id_of(b)
        if i is not None and j is not None:
            ids[i], ids[j] = j, i
    return ids


def image_dataset(features: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0) -> tf.data.Dataset:
    """Batches of ``(annotations float16 (B, L, D), image_index int32 (B,))``, one row per image.

    For objectives that score whole generated captions per image (self-critical training).
    """
    gather = _row_reader(features)
    ds = tf.data.Dataset.range(len(features)).map(lambda i: tf.cast(i, tf.int32))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return (
        ds.batch(batch_size, drop_remainder=shuffle)
        .map(lambda idx: (gather(idx), idx), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(2)
    )


def _row_reader(features: np.ndarray, mirrored: np.ndarray | None = None):
    """A graph function ``int32 (B,)[, bool (B,)] → float16 (B, *row)`` reading rows on the host.

    ``features`` may be a memory map: rows are gathered per batch, so the whole cache never
    has to be a graph constant. With ``mirrored``, rows whose flag is set come from it; index -1
    reads a zero row (a sentence without a photo). A row
    is ``(L, D)`` annotation vectors, or a ``(g, g, C)`` grid under ``model.fine_tune_from``.
    """
    row = tuple(features.shape[1:])

    def rows(source, idx, out, where):
        sel = np.flatnonzero(where)
        order = sel[np.argsort(idx[sel])]  # sorted reads from the memory map, then back to batch order
        out[order] = source[idx[order]]

    def gather(idx, flip=None):
        out = np.zeros((len(idx), *row), np.float16)  # index -1 (a sentence without a photo) stays zero
        flip = np.zeros(len(idx), bool) if flip is None else flip
        photo = idx >= 0
        rows(features, idx, out, ~flip & photo)
        if flip.any():
            rows(mirrored, idx, out, flip & photo)
        return out

    def read(idx, flip=None):
        args = [idx] if flip is None else [idx, flip]
        feats = tf.numpy_function(gather, args, tf.float16)
        feats.set_shape((None, *row))
        return feats

    return read
