"""Small composable edits of next-word log-probabilities, applied before each search choice."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class LogitsProcessor:
    """Maps ``log_probs (B, V)`` at step ``t`` (0-based) to new ``log_probs``; may edit in place."""

    def __call__(self, log_probs: np.ndarray, step: int) -> np.ndarray:
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

    def __call__(self, log_probs: np.ndarray, step: int) -> np.ndarray:
        log_probs[:, self.token_ids] = -np.inf
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

    def __call__(self, log_probs: np.ndarray, step: int) -> np.ndarray:
        if step < self.min_length:
            log_probs[:, self.end_id] = -np.inf
        return log_probs


class LogitsProcessorList(list):
    """Applies its processors in order."""

    def __call__(self, log_probs: np.ndarray, step: int) -> np.ndarray:
        for processor in self:
            log_probs = processor(log_probs, step)
        return log_probs


def decoding_processors(pad_id: int, start_id: int, end_id: int, unk_id: int) -> LogitsProcessorList:
    """The captioning default: never emit ``<pad>``, ``<start>`` or ``<unk>``, nor an empty caption."""
    return LogitsProcessorList([SuppressTokens([pad_id, start_id, unk_id]), MinLength(1, end_id)])
