"""How well the photo index's pre-selection keeps eq. 8's ranking, on a collection larger than a split.

Every Flickr8k photo of the alignment config's splits (7,500: train, dev and test) is embedded
with the built-in alignment model and the sentences of ``--split`` (default dev: choose here,
report on test) are the queries, the first sentence of each of its photos. For each pooled
vector and number of candidates, it prints the share of eq. 8's top 10 (over all the photos,
on the int4 region vectors) found among the candidates, and image search R@1/5/10 through the
index against eq. 8 on the float32 and the int4 region vectors.

Usage: python scripts/index_preselect.py [--split dev] [--candidates 100,200,400] [--limit 0]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    from tqdm import tqdm

    from edgecap.evaluation.evaluate import default_config
    from edgecap.runs import read_splits
    from edgecap.runtime import Retriever, RetrieverOptions
    from edgecap.runtime.alignment_scores import score_matrix
    from edgecap.runtime.photo_index import dequantize_int4, quantize_int4, quantize_int8

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--candidates", default="100,200,400")
    parser.add_argument("--limit", type=int, default=0, help="photos of the collection (0: all)")
    args = parser.parse_args()
    splits = read_splits(default_config("visual_semantic_alignment_flickr8k.toml"), ("train", "dev", "test"), None)
    queries = splits[args.split]
    collection = queries + [it for name in ("train", "dev", "test") if name != args.split for it in splits[name]]
    collection = collection[: args.limit] if args.limit else collection
    retriever = Retriever.from_preset(options=RetrieverOptions(num_threads=2))
    regions = np.stack([retriever.embed_image(it.path) for it in tqdm(collection, desc="embedding photos")])
    words = retriever.embed_sentences([it.captions[0] for it in queries], strict=False)
    truth = np.arange(len(queries))  # the queries' photos come first in the collection
    codes, scales = quantize_int4(regions)
    int4 = dequantize_int4(codes, scales, regions.shape[-1])

    def recall(scores: np.ndarray) -> str:
        rank = (scores > scores[truth, np.arange(len(truth))]).sum(axis=0) + 1
        return "  ".join(f"R@{k} {100 * np.mean(rank <= k):5.2f}" for k in (1, 5, 10))

    exact = score_matrix(int4, words)  # (N, M)
    print(f"{len(collection)} photos, {len(queries)} {args.split} sentences")
    print(f"eq. 8, float32 regions: {recall(score_matrix(regions, words))}")
    print(f"eq. 8, int4 regions:    {recall(exact)}")
    top10 = np.argsort(-exact, axis=0, kind="stable")[:10]  # (10, M)
    query = np.stack([w.sum(axis=0) for w in words])  # (M, h)
    pooled = {
        "whole image": regions[:, -1],
        "mean of the regions": regions.mean(axis=1),
        "whole image + mean (the index's)": regions[:, -1] + regions.mean(axis=1),
    }
    cols = np.arange(len(words))
    for name, vectors in pooled.items():
        q8, s8 = quantize_int8(vectors)
        pre = (q8.astype(np.float32) * s8[:, None]) @ query.T  # (N, M)
        for c in (int(x) for x in args.candidates.split(",")):
            chosen = np.argpartition(-pre, c - 1, axis=0)[:c]  # (C, M)
            kept = np.mean([np.isin(top10[:, m], chosen[:, m]).mean() for m in cols])
            via = np.full_like(exact, -np.inf)
            via[chosen, cols] = exact[chosen, cols]
            print(f"{name:34} C = {c:4}: top-10 kept {kept:.3f}  {recall(via)}")


if __name__ == "__main__":
    main()
