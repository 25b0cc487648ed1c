"""Tags as inputs of a tag-conditioned captioner (no TensorFlow).

A model whose step contract declares tags (:class:`~edgecap.runtime.contract.TagsDecl`) reads
the photo's tags as two memory tensors: up to K vocabulary ids and their scores. The same
function fills them at run time (from :class:`~edgecap.runtime.tagger.Tagger`'s tags), for the
training photos (their cached tags) and for the sentences without photos (pseudo-tags), so a
model sees at run time exactly what it learned from.

from edgecap.runtime.tag_inputs import tag_input_arrays
memory.update(tag_input_arrays(captioner.tag(photo), contract.tags, captioner.word_index))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from edgecap.runtime.contract import TagsDecl
from edgecap.runtime.tagger import Tag


def tag_word_id(tag: Tag, word_index: Mapping[str, int], first_id: int = 4) -> int | None:
    """The vocabulary id a tag enters the model as: its word (``"cat"``, ``"person"``), else its
    first form the vocabulary has; None when it has none (or only special tokens, ids below
    ``first_id``)."""
    for word in (tag.word, *tag.forms):
        i = word_index.get(word)
        if i is not None and i >= first_id:
            return i
    return None


def tag_input_rows(
    tags: Iterable[tuple[str, float]] | Iterable[Tag],
    decl: TagsDecl,
    word_index: Mapping[str, int],
    source: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One photo's tag slots: ``(ids int32 (K,), scores float32 (K,))``.

    The tags scored at least ``decl.min_score`` whose word the vocabulary has, best first
    (ties by word), one slot per word (its best score), at most ``decl.size``; the rest of the
    slots hold id 0 and score 0.

    Args:
        tags: :class:`Tag` objects, or ``(word, score)`` pairs (cached or pseudo-tags).
        decl: the model's tag declaration.
        word_index: the captioner's vocabulary, word → id.
        source: keep only the tags of this tagger (``Tag.source``; default ``decl.tagger``
            when it is set). ``(word, score)`` pairs are taken as that tagger's.

    Raises:
        ValueError: a score that is not a number in [0, 1].
    """
    wanted = decl.tagger if source is None else source
    best: dict[int, tuple[float, str]] = {}
    for tag in tags:
        if isinstance(tag, Tag):
            if wanted and tag.source != wanted:
                continue
            i, score, word = tag_word_id(tag, word_index), tag.score, tag.word
        else:
            word, score = tag
            i = word_index.get(word)
            i = i if i is not None and i >= 4 else None
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"tag {word!r}: score must be in [0, 1], got {score}")
        if i is None or score < decl.min_score:
            continue
        if i not in best or score > best[i][0]:
            best[i] = (score, word)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[: decl.size]
    ids = np.zeros(decl.size, np.int32)
    scores = np.zeros(decl.size, np.float32)
    for slot, (i, (score, _)) in enumerate(ranked):
        ids[slot], scores[slot] = i, score
    return ids, scores


def tag_input_arrays(
    tags: Sequence[Tag] | None, decl: TagsDecl, word_index: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """The two memory tensors of one photo's tags, ``{decl.ids: int32 (1, K), decl.scores:
    float32 (1, K)}``, as the step takes them (``tags`` None or empty: no tags)."""
    ids, scores = tag_input_rows(tags or (), decl, word_index)
    return {decl.ids: ids[None], decl.scores: scores[None]}
