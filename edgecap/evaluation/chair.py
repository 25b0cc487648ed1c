"""CHAIR: how often captions name objects that are not in the photo (no TensorFlow, no Java).

Rohrbach, Hendricks, Burns, Darrell & Saenko, "Object Hallucination in Image Captioning",
EMNLP 2018, §2. A caption *mentions* an object category when one of the category's words
(:data:`SYNONYMS`, the 80 COCO categories) occurs in it; the category is *hallucinated* when it
is not among the photo's ground-truth objects. Then, over a set of captions,

- ``CHAIRi = |hallucinated mentions| / |mentions|`` (per object instance; a category counted
  once per caption), and
- ``CHAIRs = |captions with a hallucinated mention| / |captions|`` (per sentence).

The paper takes a COCO photo's ground truth from its segmentation labels *and* its reference
captions. Here, on any reference set (Flickr8k has no boxes), it comes from the reference
captions alone: an object the photo shows but no reference names counts as hallucinated, so
these figures are an **upper bound** of the paper's.

The word lists (:mod:`edgecap.runtime.objects`) follow the paper's synonym list in method but were
written for edgecap.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edgecap.runtime.objects import SYNONYMS, objects, reference_objects

__all__ = ["SYNONYMS", "ChairScores", "chair", "objects", "reference_objects"]


@dataclass
class ChairScores:
    """CHAIR over a set of captions (Rohrbach et al. 2018, §2), ×100 like the caption metrics.

    Attributes:
        chair_s: CHAIRs, % of captions naming at least one object not in the photo.
        chair_i: CHAIRi, % of object mentions (one per category and caption) not in the photo.
        captions: captions scored.
        mentions: object mentions (category, caption pairs).
        hallucinated: ``{category: how many captions name it without it being there}``,
            most first.
        mentioned: ``{category: how many captions name it}``.
    """

    chair_s: float
    chair_i: float
    captions: int
    mentions: int
    hallucinated: dict[str, int] = field(default_factory=dict)
    mentioned: dict[str, int] = field(default_factory=dict)

    def most_hallucinated(self, n: int = 5) -> list[tuple[str, int, int]]:
        """``[(category, hallucinated, mentioned)]``, the ``n`` most hallucinated categories."""
        return [(c, k, self.mentioned[c]) for c, k in list(self.hallucinated.items())[:n]]

    def as_dict(self) -> dict:
        return {
            "CHAIRs": self.chair_s,
            "CHAIRi": self.chair_i,
            "captions": self.captions,
            "mentions": self.mentions,
            "hallucinated": self.hallucinated,
        }


def chair(references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str]) -> ChairScores:
    """CHAIRs and CHAIRi of ``hypotheses`` against the objects their references name.

    Args:
        references: image id → human captions (the ground truth objects come from these).
        hypotheses: image id → one generated caption.

    Returns:
        the scores; CHAIRi is 0 when no caption names an object.

    Raises:
        ValueError: no hypotheses, or a hypothesis whose image has no references.
    """
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    missing = [k for k in hypotheses if not references.get(k)]
    if missing:
        raise ValueError(f"{len(missing)} hypothesis id(s) have no references, e.g. {missing[0]!r}")
    hallucinated: collections.Counter[str] = collections.Counter()
    mentioned: collections.Counter[str] = collections.Counter()
    bad_captions = 0
    for image_id, caption in hypotheses.items():
        truth = reference_objects(references[image_id])
        named = objects(caption)
        mentioned.update(named)
        wrong = [c for c in named if c not in truth]
        hallucinated.update(wrong)
        bad_captions += bool(wrong)
    mentions = sum(mentioned.values())
    return ChairScores(
        chair_s=100.0 * bad_captions / len(hypotheses),
        chair_i=100.0 * sum(hallucinated.values()) / mentions if mentions else 0.0,
        captions=len(hypotheses),
        mentions=mentions,
        hallucinated=dict(hallucinated.most_common()),
        mentioned=dict(mentioned),
    )
