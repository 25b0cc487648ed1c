"""R@K and median rank on toy score matrices whose answers are known; eq. 8 in NumPy against a loop."""

import numpy as np
import pytest

from edgecap.evaluation.retrieval import ranks, recall_at_k, rsum
from edgecap.runtime.alignment_scores import score_matrix, word_alignment


def test_ranks_on_a_toy_set():
    # 3 images, 2 sentences each (sentences 0,1 → image 0; 2,3 → image 1; 4,5 → image 2)
    owner = [0, 0, 1, 1, 2, 2]
    scores = np.array(
        [
            [9, 1, 8, 0, 0, 0],  # image 0: its sentence 0 first → annotation rank 1
            [0, 0, 5, 1, 7, 6],  # image 1: its best own (sentence 2, 5) behind sentences 4, 5 → rank 3
            [0, 0, 0, 0, 1, 2],  # image 2: sentence 5 first → rank 1
        ],
        float,
    )
    annotation, search = ranks(scores, owner)
    assert annotation.tolist() == [1, 3, 1]
    # sentence 0: image 0 best (1); sentence 1: 1 vs 0, 0 → 1; sentence 2: image 0 has 8 > 5 → 2;
    # sentence 3: 1 vs 0, 0 → 1; sentence 4: image 1 has 7 > 1 → 2; sentence 5: 6 > 2 → 2
    assert search.tolist() == [1, 1, 2, 1, 2, 2]
    m = recall_at_k(scores, owner, ks=(1, 2))
    assert m["annotation R@1"] == pytest.approx(200 / 3) and m["annotation R@2"] == pytest.approx(200 / 3)
    assert m["search R@1"] == pytest.approx(50.0) and m["search R@2"] == 100.0
    assert m["annotation med r"] == 1 and m["search med r"] == 1.5
    assert rsum(m) == pytest.approx(200 / 3 * 2 + 150)


def test_ties_count_against_the_true_match():
    annotation, search = ranks(np.zeros((2, 2)), [0, 1])
    assert annotation.tolist() == [2, 2] and search.tolist() == [2, 2]
    nan = np.full((2, 2), np.nan)  # a diverged model: last, not first
    assert ranks(nan, [0, 1])[0].tolist() == [2, 2]
    with pytest.raises(ValueError, match="every image"):
        ranks(np.zeros((3, 2)), [0, 1])


def test_score_matrix_is_eq8():
    rng = np.random.default_rng(1)
    regions = rng.normal(size=(4, 6, 5)).astype(np.float32)
    sentences = [rng.normal(size=(n, 5)).astype(np.float32) for n in (3, 1, 0, 7, 2)]
    S = score_matrix(regions, sentences, max_columns=4)  # several column groups
    loop = [[(s @ r.T).max(axis=1).sum() if len(s) else 0.0 for s in sentences] for r in regions]
    np.testing.assert_allclose(S, loop, rtol=1e-5, atol=1e-5)
    cells, dots = word_alignment(regions[0], sentences[0])
    assert cells.tolist() == (sentences[0] @ regions[0].T).argmax(axis=1).tolist() and dots.shape == (3, 6)
