"""Image–sentence retrieval metrics: R@K and median rank in both directions (no TensorFlow).

As in Karpathy & Fei-Fei (CVPR 2015, Table 1) and the DeViSE/SDT-RNN papers before it:

- **image annotation** (image → sentences): for each image, the rank of the highest-ranked
  of its own sentences among all sentences;
- **image search** (sentence → image): for each sentence, the rank of its image among all images.

R@K is the percentage of queries whose rank is at most K; med r the median rank (1 = first).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (1, 5, 10)


def ranks(scores: np.ndarray, sentence_image: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Ranks (1-based) of the true matches.

    Args:
        scores: ``float (N, M)``, higher = better; row n is image n, column m sentence m.
        sentence_image: ``int (M,)``, the image index of each sentence.

    Returns:
        ``(annotation int (N,), search int (M,))``. Ties count against the true match (a
        constant score matrix gives the worst ranks, not the best), and NaN scores rank last.

    Raises:
        ValueError: shapes that do not match, or an image without any sentence.
    """
    scores = np.asarray(scores, np.float64)
    scores = np.where(np.isnan(scores), -np.inf, scores)  # a NaN (a diverged model) ranks last, never first
    owner = np.asarray(sentence_image, np.int64)
    N, M = scores.shape
    if owner.shape != (M,):
        raise ValueError(f"sentence_image has shape {owner.shape}, expected ({M},) for a ({N}, {M}) score matrix")
    if owner.min(initial=0) < 0 or owner.max(initial=0) >= N or len(np.unique(owner)) != N:
        raise ValueError("every image needs at least one sentence, and every sentence an image index in [0, N)")
    true = scores[owner, np.arange(M)]  # (M,) score of each sentence with its image
    search = 1 + (scores >= true[None, :]).sum(axis=0) - 1  # images scoring at least as high, itself excluded
    mine = owner[None, :] == np.arange(N)[:, None]  # (N, M)
    best_own = np.where(mine, scores, -np.inf).max(axis=1)  # (N,)
    annotation = 1 + ((scores >= best_own[:, None]) & ~mine).sum(axis=1)  # other images' sentences at least as high
    return annotation, search


def recall_at_k(scores: np.ndarray, sentence_image: Sequence[int], ks: Sequence[int] = KS) -> dict[str, float]:
    """``{"annotation R@1": %, ..., "annotation med r": r, "search R@1": %, ..., "search med r": r}``.

    Raises:
        ValueError: see :func:`ranks`.
    """
    annotation, search = ranks(scores, sentence_image)
    out = {}
    for name, r in (("annotation", annotation), ("search", search)):
        for k in ks:
            out[f"{name} R@{k}"] = 100.0 * float(np.mean(r <= k))
        out[f"{name} med r"] = float(np.median(r))
    return out


def rsum(metrics: dict[str, float]) -> float:
    """Sum of the six R@K figures (the usual model-selection number)."""
    return sum(v for k, v in metrics.items() if "R@" in k)


#: Karpathy & Fei-Fei (CVPR 2015), Table 1, Flickr8K, "Our model: BRNN".
PAPER_FLICKR8K_BRNN = {
    "annotation R@1": 16.5,
    "annotation R@5": 40.6,
    "annotation R@10": 54.2,
    "annotation med r": 7.6,
    "search R@1": 11.8,
    "search R@5": 32.1,
    "search R@10": 44.7,
    "search med r": 12.4,
}


# --- a Keras alignment model on a split (imports TensorFlow when called) ---------------------
def embed_split(
    model, split, vocab, batch_size: int = 100, progress: bool = False
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Region and word vectors of a split (a :class:`~edgecap.data.features.SplitData`) under a
    Keras alignment model, from its annotation vectors ``(N, L, D)``
    (:func:`~edgecap.models.keras_step.cached_annotations` of the cache with ``fine_tune_from``).

    Returns:
        ``(regions float32 (N, R, h), word vectors per sentence [(T_m, h)], sentence_image int32 (M,))``
        with the sentences in reading order (5 per Flickr8k image).
    """
    from tqdm.auto import tqdm

    from edgecap.data.pipeline import encode_sentences
    from edgecap.models.keras_step import batched, graph_function
    from edgecap.runtime.alignment_scores import unit_vectors

    words_fn = graph_function(model, "words")
    unit = model.config.normalize
    regions = unit_vectors(batched(model, "regions", split.features, batch_size), unit)
    index, tokens = encode_sentences(split.items, vocab, model.config.max_words)
    lengths = (tokens != vocab.pad_id).sum(axis=1)
    words = []
    for i in tqdm(range(0, len(tokens), batch_size), desc="embedding sentences", disable=not progress):
        out = unit_vectors(words_fn(tokens[i : i + batch_size]).numpy(), unit)
        words += [w[:n] for w, n in zip(out, lengths[i : i + batch_size])]
    return regions, words, index


def evaluate_split(model, split, vocab, progress: bool = False) -> dict[str, float]:
    """R@1/5/10 and median rank in both directions on ``split`` (Keras model, cached features)."""
    from edgecap.runtime.alignment_scores import score_matrix

    regions, words, index = embed_split(model, split, vocab, progress=progress)
    return recall_at_k(score_matrix(regions, words), index)
