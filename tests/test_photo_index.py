"""The scalable photo index (issue 30): int4 regions and int8 pooled vectors, memory-mapped,
a format-1 index still read, and search through the pre-selection."""

import json

import numpy as np
import pytest

from edgecap.runtime import PhotoIndex, Retriever
from edgecap.runtime.photo_index import dequantize_int4, quantize_int4


def _unit(rng, shape):
    x = rng.normal(size=shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("dim", [8, 7])
def test_int4_codes_round_trip_within_half_a_step(dim):
    x = _unit(np.random.default_rng(dim), (5, 3, dim))
    codes, scales = quantize_int4(x)
    assert codes.shape == (5, 3, (dim + 1) // 2) and codes.dtype == np.uint8
    assert np.all(np.abs(dequantize_int4(codes, scales, dim) - x) <= scales[..., None] / 2 + 1e-7)


def test_region_dots_equal_the_dequantized_products():
    rng = np.random.default_rng(0)
    index = PhotoIndex.from_vectors([f"{i}.jpg" for i in range(6)], _unit(rng, (6, 5, 9)), "d" * 64)
    words = _unit(rng, (4, 9))
    expected = np.einsum("nrh,wh->nrw", index.region_vectors(), words)
    np.testing.assert_allclose(index.region_dots(slice(None), words), expected, atol=1e-5)
    sentences = [words[:3], words[:0], words[3:]]
    scores = index.eq8_scores(np.array([1, 4]), sentences)
    assert scores.shape == (2, 3) and np.all(scores[:, 1] == 0)
    np.testing.assert_allclose(scores[:, 0], expected[[1, 4], :, :3].max(axis=1).sum(axis=1), atol=1e-5)


def test_the_index_file_is_memory_mapped_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    index = PhotoIndex.from_vectors([f"p{i}.jpg" for i in range(40)], _unit(rng, (40, 5, 16)), "e" * 64)
    loaded = PhotoIndex.load(index.save(tmp_path / "photos.npz"))
    assert loaded.memory_mapped and isinstance(loaded.regions, np.memmap) and isinstance(loaded.pooled, np.memmap)
    assert loaded.paths == index.paths and loaded.dim == 16
    for name in ("regions", "region_scales", "pooled", "pooled_scales"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
    words = _unit(rng, (3, 16))
    assert loaded.candidates(words, 7).tolist() == index.candidates(words, 7).tolist()
    in_memory = PhotoIndex.load(tmp_path / "photos.npz", mmap=False)
    assert not in_memory.memory_mapped and not isinstance(in_memory.regions, np.memmap)


def test_candidates_are_the_best_pooled_photos_in_index_order():
    rng = np.random.default_rng(2)
    index = PhotoIndex.from_vectors([f"{i}.jpg" for i in range(50)], _unit(rng, (50, 4, 8)), "f" * 64)
    words = _unit(rng, (2, 8))
    rows = index.candidates(words, 10)
    pre = index.preselect_scores(words.sum(axis=0))
    assert rows.tolist() == sorted(rows.tolist()) and len(rows) == 10
    assert pre[rows].min() >= np.delete(pre, rows).max()
    assert index.candidates(words, None).tolist() == list(range(50)) == index.candidates(words, 80).tolist()
    with pytest.raises(ValueError, match="candidates must be >= 1"):
        index.candidates(words, 0)


@pytest.fixture(scope="module")
def retriever():
    return Retriever.from_preset("visual_semantic_alignment_flickr8k")


def test_a_format_1_index_still_loads_and_searches(retriever, examples, tmp_path):
    photos = sorted(examples.glob("*.jpg"))
    regions = np.stack([retriever.embed_image(p) for p in photos]).astype(np.float16)
    header = {"format": 1, "model_digest": retriever.metadata.flatbuffer_sha256, "paths": [str(p) for p in photos]}
    np.savez(tmp_path / "old.npz", header=np.frombuffer(json.dumps(header).encode(), np.uint8), regions=regions)
    loaded = retriever.load_index(tmp_path / "old.npz")
    assert not loaded.memory_mapped and loaded.regions.dtype == np.uint8
    fresh = retriever.index(photos)
    np.testing.assert_array_equal(loaded.pooled_scales > 0, fresh.pooled_scales > 0)
    hits = retriever.search("a cup of coffee", k=3)
    assert [h.path for h in hits] == [h.path for h in retriever.search("a cup of coffee", k=3, candidates=None)]


def test_search_ranks_its_candidates_by_eq8(retriever, examples):
    photos = sorted(examples.glob("*.jpg")) * 4  # 12 photos, each three times
    retriever.index(photos)
    query = "a cat lying on a blanket"
    words = retriever.embed_sentences([query])[0]
    index = retriever.photo_index
    rows = index.candidates(words, 5)
    hits = retriever.search(query, k=5, candidates=5)
    scores = index.eq8_scores(rows, [words])[:, 0]
    assert sorted(h.index for h in hits) == rows.tolist()
    assert [h.index for h in hits] == rows[np.argsort(-scores, kind="stable")].tolist()
    every = retriever.search(query, k=12, candidates=None)
    assert [h.score for h in every] == sorted((h.score for h in every), reverse=True)
    assert hits[0].score == every[0].score  # the best photo survives the pre-selection
