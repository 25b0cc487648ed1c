"""Attribute detection scores (no TensorFlow): mean average precision over attributes, and
precision/recall of each image's top k against the words of its human captions."""

from __future__ import annotations

import numpy as np


def attribute_scores(probabilities: np.ndarray, labels: np.ndarray, k: int = 10) -> dict[str, float]:
    """Detection scores on one split, ×100.

    Args:
        probabilities: ``float (N, A)`` per image and attribute (any monotone score works).
        labels: ``{0, 1} (N, A)``: attribute j is a word of one of image n's captions.
        k: how many top attributes an image shows (``edgecap caption --attributes``).

    Returns:
        ``{"mAP", "P@k", "R@k", "attributes_scored"}``: the mean over attributes with at least
        one positive image of scikit-learn's average precision (images ranked by score); the
        mean over images of |top k ∩ caption words| / k and / |caption words| (images with no
        attribute word count 0 recall).

    Raises:
        ValueError: shapes differ, or ``k`` is not in 1..A.
    """
    from sklearn.metrics import average_precision_score

    probabilities, labels = np.asarray(probabilities, np.float64), np.asarray(labels) > 0
    if probabilities.shape != labels.shape or probabilities.ndim != 2:
        raise ValueError(f"probabilities {probabilities.shape} and labels {labels.shape} must be the same (N, A) shape")
    if not 1 <= k <= labels.shape[1]:
        raise ValueError(f"k must be in 1..{labels.shape[1]}, got {k}")
    scored = np.flatnonzero(labels.any(axis=0))
    ap = [average_precision_score(labels[:, j], probabilities[:, j]) for j in scored]
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]  # (N, k)
    hits = np.take_along_axis(labels, top, axis=1).sum(axis=1)  # (N,)
    truth = labels.sum(axis=1)
    recall = np.divide(hits, truth, out=np.zeros(len(hits)), where=truth > 0)
    return {
        "mAP": 100 * float(np.mean(ap)),
        f"P@{k}": 100 * float(np.mean(hits / k)),
        f"R@{k}": 100 * float(np.mean(recall)),
        "attributes_scored": int(len(scored)),
    }


def frequency_baseline(train_labels: np.ndarray, num_images: int) -> np.ndarray:
    """The trivial detector: every image gets each attribute's training frequency ``(num_images, A)``,
    so its top k are always the k most frequent attributes."""
    return np.broadcast_to(np.asarray(train_labels, np.float64).mean(axis=0), (num_images, np.shape(train_labels)[1]))


def top_k(num_attributes: int) -> int:
    """How many top attributes are scored: 10 (what ``edgecap caption --attributes`` shows), or all of
    a smaller vocabulary."""
    return min(10, num_attributes)


def detect(model, annotations: np.ndarray) -> np.ndarray:
    """Noisy-OR probabilities ``float32 (N, A)`` of annotation vectors ``(N, L, D)`` under a
    Keras attribute detector (imports TensorFlow)."""
    from edgecap.models.keras_step import batched

    return batched(model, "probabilities", annotations)
