"""How spread semantic attention's input (α) and output (β) attention over the k attributes are.

Captions photos with a semantic attention ``.tflite`` file through the runtime (no TensorFlow)
and reads each word's attention back (``Caption.attention``: ``(words, 2, k)``, α row 0, β
row 1; You et al. 2016 eq. 4 and 6). Prints, for α and β: the mean entropy per word over
log k (1 = uniform, 0 = one-hot), the mean largest weight, the share of captions whose
largest weight sits on one attribute at every word, the share of words whose largest weight
is on the detector's first attribute, and the attribute words most often weighted most.
The figures behind "β collapsed" in the README's semantic attention section.

Usage: python scripts/attribute_attention_stats.py runs/sa_vis_int8.tflite \
           --photos ../shared/data/flickr8k/Images --split-file ../shared/data/flickr8k/Flickr_8k.devImages.txt
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgecap.runtime.captioner import Captioner, CaptionerOptions


def summarise(weights: list[np.ndarray], words: list[list[str]]) -> dict:
    """``weights``: per caption ``float (T, k)``; ``words``: per caption its k attribute words."""
    k = weights[0].shape[-1]
    rows = np.concatenate(weights)  # (ΣT, k)
    entropy = -np.sum(rows * np.log(np.clip(rows, 1e-12, None)), axis=-1) / np.log(k)
    top = [w.argmax(-1) for w in weights]
    favourite = Counter(words[n][i] for n, t in enumerate(top) for i in t)
    return {
        "entropy / log k": float(entropy.mean()),
        "largest weight": float(rows.max(-1).mean()),
        "captions with one attribute on top at every word": float(np.mean([len(set(t)) == 1 for t in top])),
        "words whose top attribute is the detector's first": float(np.mean(np.concatenate(top) == 0)),
        "most often on top": ", ".join(f"{w} {c / len(rows):.2f}" for w, c in favourite.most_common(5)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a semantic attention .tflite file")
    ap.add_argument("--photos", required=True, help="folder of the photos")
    ap.add_argument(
        "--split-file", help="file listing the photo names to use, one a line (default: every .jpg in --photos)"
    )
    ap.add_argument("--limit", type=int, default=200, help="photos (the first N of the list)")
    ap.add_argument("--beam-size", type=int, default=3)
    ap.add_argument("--length-penalty", type=float, default=0.75)
    ap.add_argument("--no-repeat-ngram", type=int, default=3)
    args = ap.parse_args()
    photos = Path(args.photos)
    names = (
        Path(args.split_file).read_text().split() if args.split_file else sorted(p.name for p in photos.glob("*.jpg"))
    )
    options = CaptionerOptions(
        beam_size=args.beam_size,
        length_penalty=args.length_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram,
        taggers=(),
    )
    captioner = Captioner.from_file(args.model, options)
    alpha, beta, words = [], [], []
    for name in tqdm(names[: args.limit], desc="captioning", unit="photo"):
        result = captioner.caption(photos / name)
        if result.attention.ndim != 3 or result.attention.shape[1] != 2:
            raise SystemExit(
                f"{args.model}: attention of shape {result.attention.shape[1:]}, not (2, k): not a semantic attention model with both attentions"
            )
        attention = result.attention  # (T, 2, k)
        alpha.append(attention[:, 0])
        beta.append(attention[:, 1])
        words.append([w for w, _ in result.attributes])
    print(f"{args.model}: {len(words)} photos, beam {args.beam_size}")
    for label, weights in (("input attention α", alpha), ("output attention β", beta)):
        if not any(w.any() for w in weights):  # an ablation without this attention returns zeros
            print(f"{label}: off in this model")
            continue
        print(f"{label}:")
        for key, value in summarise(weights, words).items():
            print(f"  {key}: {value if isinstance(value, str) else f'{value:.3f}'}")


if __name__ == "__main__":
    main()
