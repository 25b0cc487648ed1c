"""Small composable edits of next-word log-probabilities, applied before each search choice.

A processor is called with ``log_probs float (B, V)`` and ``sequences int (B, t)``, the words
each row has emitted so far (no ``<start>``; ``t`` is the 0-based step), and returns the
edited ``log_probs`` (it may edit them in place).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class LogitsProcessor:
    """Maps ``(log_probs (B, V), sequences (B, t))`` to new ``log_probs (B, V)``."""

    def __call__(self, log_probs: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SuppressTokens(LogitsProcessor):
    """Never emit the given ids (``<pad>``, ``<start>``, ``<unk>``): their log-prob becomes -inf.

    Raises:
        ValueError: an id is negative.
    """

    def __init__(self, token_ids: Iterable[int]):
        self.token_ids = np.asarray(sorted(set(int(i) for i in token_ids)), dtype=np.int64)
        if self.token_ids.size and self.token_ids[0] < 0:
            raise ValueError(f"token ids must be >= 0, got {self.token_ids.tolist()}")
        self._runs: list[slice] = []  # the ids as runs of consecutive ids: a few slice writes per step
        for i in self.token_ids.tolist():
            if self._runs and self._runs[-1].stop == i:
                self._runs[-1] = slice(self._runs[-1].start, i + 1)
            else:
                self._runs.append(slice(i, i + 1))

    def __call__(self, log_probs: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        for run in self._runs:
            log_probs[:, run] = -np.inf
        return log_probs


class MinLength(LogitsProcessor):
    """Forbid ``<end>`` before ``min_length`` words.

    Raises:
        ValueError: ``min_length`` < 0.
    """

    def __init__(self, min_length: int, end_id: int):
        if min_length < 0:
            raise ValueError(f"min_length must be >= 0, got {min_length}")
        self.min_length, self.end_id = min_length, end_id

    def __call__(self, log_probs: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        if sequences.shape[1] < self.min_length:
            log_probs[:, self.end_id] = -np.inf
        return log_probs


class NoRepeatNGram(LogitsProcessor):
    """Forbid any word that would repeat an n-gram already in the caption.

    "a dog on a skateboard on a skateboard" repeats the trigram "on a skateboard"; with
    ``ngram_size=3`` the second "skateboard" is blocked. As Hugging Face's
    ``NoRepeatNGramLogitsProcessor`` (``no_repeat_ngram_size``); 0 disables it.

    Raises:
        ValueError: ``ngram_size`` < 0 or == 1 (that would forbid every repeated word).
    """

    def __init__(self, ngram_size: int):
        if ngram_size < 0 or ngram_size == 1:
            raise ValueError(f"no_repeat_ngram_size must be 0 (off) or >= 2, got {ngram_size}")
        self.n = ngram_size

    def __call__(self, log_probs: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        n, t = self.n, sequences.shape[1]
        if not n or t < n:
            return log_probs
        for row, seq in enumerate(sequences.tolist()):
            prefix = seq[t - n + 1 :]  # the last n-1 words
            last = prefix[-1]
            banned = [
                seq[i + n - 1] for i in range(t - n + 1) if seq[i + n - 2] == last and seq[i : i + n - 1] == prefix
            ]
            if banned:  # rare: most steps touch no entry
                log_probs[row, banned] = -np.inf
        return log_probs


class PenalizeTokens(LogitsProcessor):
    """Subtract ``penalty`` nats from the log-probabilities of ``token_ids`` at every step: a
    soft prior against words the evidence speaks against (``inf``: never emit them).

    Args:
        token_ids: vocabulary ids.
        penalty: nats, > 0.

    Raises:
        ValueError: a penalty that is not > 0, or a negative id.
    """

    def __init__(self, token_ids: Iterable[int], penalty: float):
        ids = sorted(set(int(i) for i in token_ids))
        if not penalty > 0:
            raise ValueError(f"penalty must be > 0, got {penalty}")
        if ids and ids[0] < 0:
            raise ValueError(f"token ids must be >= 0, got {ids[0]}")
        self.ids, self.penalty = np.array(ids, np.int64), float(penalty)

    def __call__(self, log_probs: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        if not len(self.ids):
            return log_probs
        out = log_probs.copy()
        out[:, self.ids] -= self.penalty
        return out


class LogitsProcessorList(list):
    """Applies its processors in order."""

    def __call__(self, log_probs: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        for processor in self:
            log_probs = processor(log_probs, sequences)
        return log_probs


def decoding_processors(
    pad_id: int, start_id: int, end_id: int, unk_id: int, no_repeat_ngram_size: int = 0
) -> LogitsProcessorList:
    """The captioning default: never emit ``<pad>``, ``<start>`` or ``<unk>``, nor an empty caption;
    optionally no repeated n-gram (see :class:`NoRepeatNGram`).

    Raises:
        ValueError: a bad ``no_repeat_ngram_size``.
    """
    processors = LogitsProcessorList([SuppressTokens([pad_id, start_id, unk_id]), MinLength(1, end_id)])
    if no_repeat_ngram_size:
        processors.append(NoRepeatNGram(no_repeat_ngram_size))
    return processors
