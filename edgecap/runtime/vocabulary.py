"""Caption tokenisation and the word vocabulary (no TensorFlow)."""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIAL_TOKENS = (PAD, START, END, UNK)

_NON_WORD = re.compile(r"[^a-z0-9 ]+")


def tokenize(caption: str) -> list[str]:
    """Lower-case ``caption``, strip punctuation and split on white space.

    ``"A dog's ball ."`` → ``["a", "dogs", "ball"]``. Apostrophes are dropped (not split
    on), as in the Karpathy preprocessing of Flickr8k/30k and COCO.
    """
    text = caption.lower().replace("'", "")
    return _NON_WORD.sub(" ", text).split()


@dataclass
class Vocabulary:
    """Word ↔ id table with the four special tokens at ids 0..3.

    Args:
        words: all tokens in id order; must start with ``<pad> <start> <end> <unk>``.

    Raises:
        ValueError: if the special tokens are not the first four entries or a word repeats.
    """

    words: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if tuple(self.words[:4]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}, got {self.words[:4]}")
        self._index = {w: i for i, w in enumerate(self.words)}
        if len(self._index) != len(self.words):
            raise ValueError("vocabulary has repeated words")

    pad_id = 0
    start_id = 1
    end_id = 2
    unk_id = 3

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5) -> "Vocabulary":
        """Keep words seen at least ``min_count`` times (Flickr8k train, 5 → ~2.5k words).

        Raises:
            ValueError: if ``min_count`` < 1 or no caption is given.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts: collections.Counter[str] = collections.Counter()
        n = 0
        for caption in captions:
            counts.update(tokenize(caption))
            n += 1
        if n == 0:
            raise ValueError("cannot build a vocabulary from zero captions")
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIAL_TOKENS) + kept)

    def extended(self, captions: Iterable[str], min_count: int) -> "Vocabulary":
        """This vocabulary with the words of ``captions`` seen at least ``min_count`` times
        appended (most frequent first): every existing word keeps its id, so a trained model's
        rows for them carry over (the language side from unpaired text, issue 34).

        Raises:
            ValueError: ``min_count`` < 1.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts: collections.Counter[str] = collections.Counter()
        for caption in captions:
            counts.update(tokenize(caption))
        new = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in self._index), key=lambda w: (-counts[w], w)
        )
        return Vocabulary(self.words + new)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> Mapping[str, int]:
        """Word → id, every word (read-only)."""
        return MappingProxyType(self._index)

    def id_of(self, word: str) -> int | None:
        """The id of ``word``, or None when it is not in the vocabulary."""
        return self._index.get(word)

    def encode(self, caption: str | Sequence[str], max_length: int | None = None) -> list[int]:
        """Caption → ``[<start>, w1, ..., <end>]`` ids; unknown words map to ``<unk>``.

        ``max_length`` counts the words only: longer captions are cut before ``<end>``.
        """
        tokens = tokenize(caption) if isinstance(caption, str) else list(caption)
        if max_length is not None:
            tokens = tokens[:max_length]
        return [self.start_id] + [self._index.get(t, self.unk_id) for t in tokens] + [self.end_id]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids → words, stopping at ``<end>`` and dropping ``<pad>``/``<start>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in (self.pad_id, self.start_id):
                continue
            out.append(self.words[i])
        return out

    def to_json(self) -> str:
        return json.dumps({"words": self.words}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        return cls(json.loads(text)["words"])

    def save(self, path: str | Path) -> None:
        from edgecap.utils import atomic_write_text

        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        """Raises: FileNotFoundError, ValueError (naming ``path``) for a malformed file."""
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except (KeyError, json.JSONDecodeError, ValueError) as e:
            raise ValueError(f"{path}: not an edgecap vocabulary file ({e})") from e
