"""Tags for training a tag-conditioned captioner: the built-in tagger's real tags of the photos
(cached), and pseudo-tags for sentences without photos.

A tag-conditioned model (``model.tag_slots`` > 0) reads a photo's tags beside the photo. Its
training photos get the tags the runtime itself would give them: the built-in tagger run once
through :class:`edgecap.runtime.Tagger` (the runtime's own preprocessing), cached beside the
features. A sentence of the unpaired caption text (``data.caption_text``, no photo) gets
pseudo-tags, after Feng et al. (CVPR 2019, "Unsupervised Image Captioning"), who train a
sentence to be reconstructed from the detector concepts it names: here the COCO categories the
sentence names (:func:`edgecap.evaluation.chair.objects`), each kept, and each other category
added, at the rates measured between the detector's tags and the reference captions of the
training photos (:func:`measure_tag_rates`), with scores drawn from the detector's own scores of
such tags. So the model learns how far to trust a tag from the detector's real errors.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from edgecap.data.features import default_cache_dir
from edgecap.data.readers import CaptionedImage
from edgecap.runtime.contract import TagsDecl
from edgecap.runtime.objects import objects, reference_objects
from edgecap.runtime.tag_inputs import tag_input_rows
from edgecap.runtime.vocabulary import Vocabulary
from edgecap.utils import atomic_write_text, sha256_file

#: A photo's tags as cached: ``(word, score)``, best first (every tag the tagger gives, any score).
PhotoTags = list[tuple[str, float]]


def category_words(tagger_name: str) -> dict[str, str]:
    """The tagger's label → the word its tags carry (``"dining table"`` → ``"table"``, ``"person"``
    → ``"person"``), for every label that gives a tag (:func:`~edgecap.runtime.tagger.detector_word`)."""
    from edgecap.runtime.presets import tagger_path
    from edgecap.runtime.tagger import detector_word, read_tag_words

    path = tagger_path(tagger_name)
    words = read_tag_words(path.with_suffix(".words.json"), path.with_suffix(".labels.txt"))
    named = (detector_word(label, forms) for label, forms in zip(words.labels, words.words))
    return dict(n for n in named if n is not None)


def cached_tags(
    items: Sequence[CaptionedImage], tagger_name: str, cache_dir: str | Path | None = None, desc: str = "tagging"
) -> list[PhotoTags]:
    """Every tag the built-in tagger ``tagger_name`` gives each photo, from the cache when present.

    The cache file (``<cache>/tags/<tagger>-<key>.json``) is keyed by the tagger file's sha256
    and the photos' paths; it is written whole, atomically, once every photo is tagged.

    Returns:
        per photo, ``[(word, score), ...]`` best first.

    Raises:
        ImageLoadError: a photo that cannot be read (named).
    """
    from edgecap.runtime.presets import tagger_path
    from edgecap.runtime.tagger import Tagger, TaggerOptions

    model = tagger_path(tagger_name)
    h = hashlib.sha256(sha256_file(model).encode())
    for it in items:
        h.update(str(it.path).encode() + b"\0")
    path = Path(cache_dir or default_cache_dir()) / "tags" / f"{tagger_name}-{h.hexdigest()[:24]}.json"
    if path.is_file():
        return [[(str(w), float(s)) for w, s in photo] for photo in json.loads(path.read_text())]
    tagger = Tagger.from_preset(tagger_name, TaggerOptions(max_results=-1))
    out = [[(t.word, round(t.score, 4)) for t in tagger.tag(it.path)] for it in tqdm(items, desc=desc, unit="img")]
    atomic_write_text(path, json.dumps(out))
    return out


@dataclass
class TagRates:
    """How the tagger's tags relate to what the reference captions name, per category word
    (Flickr8k train): what pseudo-tags are drawn from.

    Attributes:
        keep: word → P(tagged at ``min_score`` or more | a reference names it).
        add: word → P(tagged at ``min_score`` or more | no reference names it).
        true_scores: the scores of tags a reference confirms (all categories), sorted.
        false_scores: the scores of tags no reference names, sorted.
        photos: photos measured; named: word → photos whose references name it.
    """

    keep: dict[str, float]
    add: dict[str, float]
    true_scores: list[float]
    false_scores: list[float]
    photos: int
    min_score: float
    named: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "photos": self.photos,
            "min_score": self.min_score,
            "keep": {w: round(p, 4) for w, p in sorted(self.keep.items())},
            "add": {w: round(p, 5) for w, p in sorted(self.add.items())},
            "named": dict(sorted(self.named.items())),
            "true_score_quartiles": _quartiles(self.true_scores),
            "false_score_quartiles": _quartiles(self.false_scores),
        }


def _quartiles(values: Sequence[float]) -> list[float]:
    return [round(float(q), 3) for q in np.quantile(values, [0.25, 0.5, 0.75])] if len(values) else []


def measure_tag_rates(
    items: Sequence[CaptionedImage], tags: Sequence[PhotoTags], categories: Mapping[str, str], min_score: float
) -> TagRates:
    """The rates at which the tagger keeps and adds each category, against the references.

    A category is in a photo when any reference caption names it
    (:func:`edgecap.evaluation.chair.reference_objects`). Rates are smoothed towards the
    category-wide rate with a prior of 2 photos, so a rare category gets a sensible rate.

    Args:
        items: the photos with their reference captions.
        tags: their cached tags, row for row.
        categories: the tagger's label → tag word (:func:`category_words`).
        min_score: a tag counts when scored at least this.
    """
    word_of = {label: word for label, word in categories.items()}
    named_n = dict.fromkeys(word_of.values(), 0)
    kept_n = dict.fromkeys(word_of.values(), 0)
    added_n = dict.fromkeys(word_of.values(), 0)
    true_scores, false_scores = [], []
    for it, photo in zip(items, tags):
        truth = {word_of[c] for c in reference_objects(it.captions) if c in word_of}
        tagged = {w: s for w, s in photo if s >= min_score and w in named_n}
        for w in truth:
            named_n[w] += 1
            kept_n[w] += w in tagged
        for w, s in tagged.items():
            (true_scores if w in truth else false_scores).append(s)
            added_n[w] += w not in truth
    n = len(items)
    all_named = max(sum(named_n.values()), 1)
    keep_all = sum(kept_n.values()) / all_named
    add_all = sum(added_n.values()) / max(n * len(named_n) - all_named, 1)
    keep = {w: (kept_n[w] + 2 * keep_all) / (named_n[w] + 2) for w in named_n}
    add = {w: (added_n[w] + 2 * add_all) / (n - named_n[w] + 2) for w in named_n}
    return TagRates(keep, add, sorted(true_scores), sorted(false_scores), n, min_score, named_n)


def pseudo_tags(
    sentences: Sequence[str], rates: TagRates, categories: Mapping[str, str], seed: int = 0
) -> list[PhotoTags]:
    """Tags for sentences without photos, as the tagger would have given their photos.

    Each category the sentence names is tagged with probability ``rates.keep`` (score drawn
    from the confirmed tags' scores), each other category with probability ``rates.add``
    (score drawn from the unconfirmed tags' scores). One draw per sentence, from ``seed``.

    Returns:
        per sentence, ``[(word, score), ...]`` best first.
    """
    rng = random.Random(seed)
    words = sorted(set(categories.values()))
    add = np.array([rates.add[w] for w in words])
    named_of = {label: word for label, word in categories.items()}
    out = []
    np_rng = np.random.default_rng(seed)
    for sentence in sentences:
        named = {named_of[c] for c in objects(sentence) if c in named_of}
        tags = [
            (w, _draw(rng, rates.true_scores, rates.min_score)) for w in sorted(named) if rng.random() < rates.keep[w]
        ]
        for j in np.flatnonzero(np_rng.random(len(words)) < add):
            if words[j] not in named:
                tags.append((words[j], _draw(rng, rates.false_scores, rates.min_score)))
        out.append(sorted(tags, key=lambda t: (-t[1], t[0])))
    return out


def _draw(rng: random.Random, scores: Sequence[float], floor: float) -> float:
    return round(rng.choice(scores), 4) if scores else max(floor, 0.5)


def tag_arrays(tags: Sequence[PhotoTags], decl: TagsDecl, word_index: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The tag tensors of many photos or sentences: ``{decl.ids: int32 (N, K), decl.scores:
    float32 (N, K)}``, each row :func:`~edgecap.runtime.tag_inputs.tag_input_rows` of its tags
    (the runtime's own selection: score at least ``decl.min_score``, best first, K at most)."""
    ids = np.zeros((len(tags), decl.size), np.int32)
    scores = np.zeros((len(tags), decl.size), np.float32)
    for n, photo in enumerate(tags):
        ids[n], scores[n] = tag_input_rows(photo, decl, word_index, source="")
    return {decl.ids: ids, decl.scores: scores}


def tag_rows(arrays: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """:func:`tags_for`'s tensors photo by photo, ``(1, K)`` each, as the step takes them (for
    calibration and the export check)."""
    n = len(next(iter(arrays.values())))
    return [{name: value[i : i + 1] for name, value in arrays.items()} for i in range(n)]


def tags_for(
    decl: TagsDecl | None, vocab: Vocabulary, items: Sequence[CaptionedImage], cache_dir=None, desc: str = "tagging"
) -> dict[str, np.ndarray] | None:
    """The tag tensors of ``items`` for a model with tag inputs (``decl``; :func:`tag_arrays` of
    the built-in tagger's cached tags), or None for a model without."""
    if decl is None:
        return None
    return tag_arrays(cached_tags(items, decl.tagger, cache_dir, desc), decl, vocab.index)
