"""Which tags constrain a caption, and when a constrained caption replaces the free one.

Constrained beam search (Anderson et al., EMNLP 2017) forces every constraint into the caption,
and a tag the captioner already handles gets forced into odd places. These small rules decide,
per photo, which tags become constraints and whether the result is kept (the values are chosen
on ``coco_dev`` and Flickr8k dev by ``scripts/select_constraints.py``, never on test):

1. a tag is a candidate if it scores at least ``min_score`` and one of its forms is in the
   captioner's vocabulary (a word it cannot say cannot be forced: the tag is skipped);
2. a word the free caption already says is no constraint (``skip_said``);
3. a word among the captioner's ``common_words`` most frequent training words is left to the
   captioner, which names such things well by itself (vocabulary ids are in frequency order);
4. at most ``max_constraints`` tags, best first;
5. the constrained caption is kept only if its length-normalised log-probability is within
   ``margin`` nats of the free caption's (a guard the probe in issue 34 traced: the smaller
   the margin, the fewer captions change);
6. a free caption the captioner is sure of (length-normalised log-probability at least
   ``confident``) is kept as it is: on photos like its training photos the captioner is surer
   than on others, and names their subjects well by itself.

And one rule for a tag-conditioned model (its step reads the tags; :func:`untagged_words`):

7. the words of every COCO category the detector did not tag at ``untagged_below`` or more
   (a person, a dog where the detector saw none) lose ``untagged_penalty`` nats at each step of
   the search: a soft prior from the detector's evidence, not a ban (issue 44's probe that
   banned them on the Flickr8k-only model made word salad; a model that learned from COCO
   photos and follows its tags writes a sentence without them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgecap.decoding.processors import PenalizeTokens
from edgecap.decoding.search import Hypothesis
from edgecap.runtime.objects import SYNONYMS
from edgecap.runtime.tagger import Tag

SPECIAL_WORDS = 4  #: ``<pad> <start> <end> <unk>`` come first in every vocabulary
#: The taggers of the default pipeline (``edgecap caption`` without ``--tagger``), chosen on the dev sets.
DEFAULT_TAGGERS: tuple[str, ...] = ("coco_detector",)


@dataclass
class ConstraintOptions:
    """When tags constrain the search (see the module docstring for the rules). The defaults were
    chosen by ``scripts/select_constraints.py`` for the default model and tagger: the best
    ``coco_dev`` CIDEr-D among the rules that cost Flickr8k dev at most 0.5 CIDEr-D and 0.15
    BLEU-4 (docs/experiments/open_vocabulary.md).

    Attributes:
        min_score: a tag must score at least this (0..1).
        max_constraints: most constraints per caption (1..4; the search runs with
            ``2^m * beam_size`` rows).
        common_words: tags naming one of the captioner's N most frequent training words are no
            constraints (0: any word may constrain).
        skip_said: a tag the free caption already says is no constraint.
        margin: keep the constrained caption only if ``log P / (length + 1)`` is at least the free
            caption's minus this (nats per word; ``inf``: always keep it).
        confident: no constraint for a free caption whose ``log P / (length + 1)`` is at least
            this (nats per word, <= 0; 0: constrain whatever the free caption's probability).
        untagged_penalty: a tag-conditioned model only: nats taken from the words of each COCO
            category the detector did not tag (0: off; ``inf``: never said). 2 was chosen on the
            dev sets for the default model (docs/experiments/grounded_captions.md); 5 brings
            ``coco_dev``'s dev CHAIRs from 46 to 34 at a cost on Flickr8k.
        untagged_below: a category scored below this by the detector counts as untagged.
        untagged_tagger: the tagger whose tags say what is there (its labels are COCO's).

    Raises:
        ValueError: a value out of range.
    """

    min_score: float = 0.6
    max_constraints: int = 1
    common_words: int = 0
    skip_said: bool = True
    margin: float = 1.0
    confident: float = -0.8
    untagged_penalty: float = 2.0
    untagged_below: float = 0.3
    untagged_tagger: str = "coco_detector"

    def __post_init__(self):
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if not 1 <= self.max_constraints <= 4:
            raise ValueError(f"max_constraints must be in 1..4, got {self.max_constraints}")
        if self.common_words < 0:
            raise ValueError(f"common_words must be >= 0, got {self.common_words}")
        if not self.margin >= 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if not self.confident <= 0:
            raise ValueError(f"confident must be <= 0 (a log-probability per word), got {self.confident}")
        if not self.untagged_penalty >= 0:
            raise ValueError(f"untagged_penalty must be >= 0, got {self.untagged_penalty}")
        if not 0.0 <= self.untagged_below <= 1.0:
            raise ValueError(f"untagged_below must be in [0, 1], got {self.untagged_below}")


def vocabulary_forms(tag: Tag, index: dict[str, int]) -> list[int]:
    """The ids of ``tag``'s forms that the vocabulary (word → id) has; ``[]`` if none."""
    return sorted({index[w] for w in tag.forms if w in index})


def choose_constraints(
    tags: Sequence[Tag],
    index: dict[str, int],
    free_tokens: Sequence[int],
    options: ConstraintOptions,
    free_per_word: float | None = None,
) -> list[tuple[Tag, list[int]]]:
    """The tags that constrain this caption, best first, each with its word ids (a disjunctive constraint).

    Args:
        tags: the photo's tags, from every tagger (a word tagged twice counts once, its best score).
        index: the captioner's vocabulary, word → id (ids in training-frequency order).
        free_tokens: the free (unconstrained) caption's word ids.
        options: the rules.
        free_per_word: the free caption's :func:`per_word` log-probability (for ``confident``).
    """
    said = set(free_tokens)
    chosen: list[tuple[Tag, list[int]]] = []
    if free_per_word is not None and options.confident < 0 and free_per_word >= options.confident:
        return chosen
    taken: set[int] = set()
    for tag in sorted(tags, key=lambda t: (-t.score, t.word)):
        if tag.score < options.min_score:
            break
        ids = vocabulary_forms(tag, index)
        if not ids or taken & set(ids):
            continue
        if options.skip_said and said & set(ids):
            continue
        if options.common_words and min(ids) < SPECIAL_WORDS + options.common_words:
            continue
        chosen.append((tag, ids))
        taken.update(ids)
        if len(chosen) == options.max_constraints:
            break
    return chosen


def per_word(hyp: Hypothesis) -> float:
    """Length-normalised log-probability: ``log P / (words + 1)`` (``<end>`` counted), nats."""
    return hyp.log_prob / (len(hyp.tokens) + 1)


def keep_constrained(free: Hypothesis, constrained: Hypothesis, margin: float) -> bool:
    """Whether the constrained caption replaces the free one: it met its constraints and loses at
    most ``margin`` nats per word against it."""
    return constrained.constraints_met and per_word(constrained) >= per_word(free) - margin


def untagged_words(tags: Sequence[Tag], index: dict[str, int], options: ConstraintOptions) -> PenalizeTokens | None:
    """Rule 7: a processor taking ``options.untagged_penalty`` nats from the vocabulary ids of
    every COCO category (:data:`edgecap.runtime.objects.SYNONYMS`) that ``options.untagged_tagger``
    did not tag at ``options.untagged_below`` or more; None when the rule is off or that tagger
    gave no tags (nothing is known then)."""
    if not options.untagged_penalty or not any(t.source == options.untagged_tagger for t in tags):
        return None
    seen = {t.label for t in tags if t.source == options.untagged_tagger and t.score >= options.untagged_below}
    ids = [index[w] for category, words in SYNONYMS.items() if category not in seen for w in words if w in index]
    return PenalizeTokens(ids, options.untagged_penalty) if ids else None
