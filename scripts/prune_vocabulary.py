"""Drop the rarest words that unpaired text added to a run's vocabulary, to fit a size budget.

A run trained with ``data.caption_text`` appends the text's words seen at least
``data.caption_text_min_count`` times after the paired captions' words, most frequent first
(:meth:`edgecap.runtime.vocabulary.Vocabulary.extended`). Raising that count keeps a prefix of the
vocabulary, so this script cuts every weight with a vocabulary axis (word embeddings, the output
layer) to that prefix and writes a new run directory whose config says the new count: each int8
word row costs about 550 bytes (an embedding and an output column), and the built-in default model
must stay within 8 MB. The kept words' weights are unchanged; their probabilities are renormalised
over the smaller vocabulary by the softmax.

``--keep-words N`` keeps the first N words instead, whatever made them (a run that continued
another keeps its starting vocabulary first, the words it added after it, most frequent first):
for a run whose vocabulary the training captions alone no longer give (``data.extra_train``).

Usage: python scripts/prune_vocabulary.py runs/sat_text --min-count 28 --out runs/sat_text_pruned
       python scripts/prune_vocabulary.py runs/sat_tags --keep-words 3400 --out runs/sat_tags_v3400
"""

from __future__ import annotations

import argparse
import collections
import shutil
from pathlib import Path

import keras
import numpy as np

from edgecap.data.readers import read_caption_text
from edgecap.paths import resolve_data_root
from edgecap.runs import BEST, CONFIG, DECODING, STATE, VOCAB, build_model, load_run, read_splits
from edgecap.runtime.vocabulary import Vocabulary, tokenize
from edgecap.utils import atomic_path


def _text_prefix(args, cfg, vocab):
    """``(size, the text's words, those kept, the pruned vocabulary)`` for ``--min-count``."""
    if not cfg.data.caption_text or args.min_count < cfg.data.caption_text_min_count:
        raise SystemExit(
            f"{args.run}: not a run with caption text, or --min-count below its {cfg.data.caption_text_min_count}"
        )
    counts: collections.Counter = collections.Counter()
    for caption in read_caption_text(resolve_data_root(cfg.data.caption_text)):
        counts.update(tokenize(caption))
    # the paired captions' vocabulary comes first, as the run built it; the text's words follow
    paired = Vocabulary.build(
        (c for it in read_splits(cfg, ("train",))["train"] for c in it.captions), cfg.data.min_count
    )
    first = len(paired)
    if vocab.words[:first] != paired.words:
        raise SystemExit(f"{args.run / VOCAB}: does not start with the training captions' vocabulary")
    text_words = vocab.words[first:]
    kept = [w for w in text_words if counts[w] >= args.min_count]
    if text_words[: len(kept)] != kept:
        raise SystemExit(f"{args.run / VOCAB}: the text's words are not in count order; cannot cut a prefix")
    cfg.data.caption_text_min_count = args.min_count
    return first + len(kept), text_words, kept, Vocabulary(vocab.words[: first + len(kept)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run trained with data.caption_text")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--min-count", type=int, help="the new data.caption_text_min_count")
    group.add_argument("--keep-words", type=int, help="keep the first N words of the vocabulary")
    parser.add_argument("--out", type=Path, required=True, help="the new run directory")
    args = parser.parse_args()

    cfg, vocab, model = load_run(args.run)
    if args.keep_words is not None:
        if not 4 < args.keep_words <= len(vocab):
            raise SystemExit(f"--keep-words must be in 5..{len(vocab)}, got {args.keep_words}")
        size, text_words, kept = args.keep_words, vocab.words[args.keep_words :], []
        pruned = Vocabulary(vocab.words[:size])
    else:
        size, text_words, kept, pruned = _text_prefix(args, cfg, vocab)
    small = build_model(cfg, size)
    for ours, theirs in zip(small.weights, model.weights):
        value = keras.ops.convert_to_numpy(theirs.value)
        if tuple(ours.shape) != value.shape:
            axis = [i for i, (a, b) in enumerate(zip(ours.shape, value.shape)) if a != b]
            assert axis and all(value.shape[i] == len(vocab) and ours.shape[i] == size for i in axis), theirs.path
            value = np.take(value, np.arange(size), axis=axis[0])
        ours.assign(value)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg.save(args.out / CONFIG)
    pruned.save(args.out / VOCAB)
    for name in (DECODING, STATE):
        if (args.run / name).is_file():
            shutil.copy(args.run / name, args.out / name)
    with atomic_path(args.out / BEST) as tmp:
        small.save_weights(tmp)
    print(
        f"{args.out}: {len(vocab)} → {size} words ({len(text_words) - len(kept)} of the last {len(text_words)} dropped)"
    )


if __name__ == "__main__":
    main()
