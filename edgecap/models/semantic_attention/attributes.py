"""The attribute vocabulary of semantic attention (You et al., CVPR 2016, §3.1): the most
frequent content words of the training captions (no TensorFlow).

An image's attribute labels are the words of its (usually five) human captions: weak labels,
with no location, that the multiple-instance detector (:mod:`.detector`) learns from.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecap.runtime.vocabulary import SPECIAL_TOKENS, tokenize
from edgecap.utils import atomic_write_text


class AttributeVocabularyError(ValueError):
    """An attribute vocabulary file is missing, damaged, or does not fit (names the file)."""


def stop_words() -> frozenset[str]:
    """English stop words (scikit-learn's list, 318 words) plus edgecap's special tokens."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | frozenset(SPECIAL_TOKENS)


@dataclass(frozen=True)
class AttributeVocabulary:
    """Attribute words, most frequent first; attribute ``j`` is ``words[j]``.

    Args:
        words: distinct lower-case words.

    Raises:
        ValueError: no word, or a word repeats.
    """

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError("an attribute vocabulary needs at least one word")
        if len(set(self.words)) != len(self.words):
            raise ValueError("attribute vocabulary has repeated words")

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def from_captions(
        cls, captions_per_image: Iterable[Sequence[str]], size: int, exclude: frozenset[str] | None = None
    ) -> "AttributeVocabulary":
        """The ``size`` words found in the captions of the most images, stop words excluded
        (ties: alphabetical order).

        Args:
            captions_per_image: the captions of each training image.
            size: number of attributes (You et al. draw theirs from the frequent caption words).
            exclude: words never taken (default :func:`stop_words`).

        Raises:
            ValueError: ``size`` < 1, or fewer than ``size`` content words in the captions.
        """
        if size < 1:
            raise ValueError(f"attribute vocabulary size must be >= 1, got {size}")
        exclude = stop_words() if exclude is None else exclude
        images: collections.Counter[str] = collections.Counter()
        for captions in captions_per_image:
            images.update({w for c in captions for w in tokenize(c) if w not in exclude and not w.isdigit()})
        if len(images) < size:
            raise ValueError(
                f"the captions hold {len(images)} content words, fewer than the {size} attributes asked for"
            )
        return cls(tuple(sorted(images, key=lambda w: (-images[w], w))[:size]))

    def labels(self, captions_per_image: Sequence[Sequence[str]]) -> np.ndarray:
        """``uint8 (N, A)``: 1 where attribute j is a word of any caption of image n."""
        index = {w: j for j, w in enumerate(self.words)}
        out = np.zeros((len(captions_per_image), len(self.words)), np.uint8)
        for n, captions in enumerate(captions_per_image):
            for w in {w for c in captions for w in tokenize(c)}:
                if w in index:
                    out[n, index[w]] = 1
        return out

    def save(self, path: str | Path) -> None:
        """Write ``{"attributes": [...]}`` atomically."""
        atomic_write_text(path, json.dumps({"attributes": list(self.words)}, indent=0) + "\n")

    @classmethod
    def load(cls, path: str | Path, size: int | None = None) -> "AttributeVocabulary":
        """Read a file written by :meth:`save`.

        Args:
            size: when given, the number of attributes the model was built with.

        Raises:
            AttributeVocabularyError: missing or damaged file, or not ``size`` words.
        """
        path = Path(path)
        try:
            words = json.loads(path.read_text())["attributes"]
            vocab = cls(tuple(words))
        except FileNotFoundError:
            raise AttributeVocabularyError(f"{path}: attribute vocabulary not found") from None
        except (ValueError, KeyError, TypeError) as e:
            raise AttributeVocabularyError(f"{path}: not an attribute vocabulary ({e})") from None
        if size is not None and len(vocab) != size:
            raise AttributeVocabularyError(
                f"{path}: {len(vocab)} attributes, but the model has {size}; the vocabulary and the checkpoint come from different runs"
            )
        return vocab
