"""Greedy and beam search against a step-function protocol.

Ties are broken by one documented, portable rule, so that the same log-probabilities give
the same captions on every CPU (int8 log-probabilities are multiples of a small step, and
exact ties are common): higher score first, then the lower token id, then the lower beam
index. Scores are float32 sums, as on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgecap.decoding.processors import LogitsProcessorList

State = tuple  # tuple of arrays, each with the batch (beam) dimension first


class StepFunction(Protocol):
    """One decoder step.

    Called with ``tokens int32 (B,)`` (previous words) and ``state`` (a tuple of arrays,
    batch first, e.g. an LSTM's ``(h, c)``); returns ``(log_probs float32 (B, V),
    new_state, attention float32 (B, L) or None)``. Rows of the state are reordered by the
    search with fancy indexing (``s[idx]``). What is the same for every beam of an image (its
    memory) is bound to the step function, not carried in the state. The returned
    ``log_probs`` belong to the search, which may edit them in place.
    """

    def __call__(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State, np.ndarray | None]: ...


@dataclass
class Hypothesis:
    """One finished caption.

    Attributes:
        tokens: word ids, without ``<start>``/``<end>``.
        log_prob: sum of the chosen words' log-probabilities, ``<end>`` included (nats).
        score: ``log_prob / length ** length_penalty`` (length counts ``<end>``); ranks hypotheses.
        attention: ``(len(tokens), L)`` attention weights per emitted word, or None.
        constraints_met: False when a constrained search could not meet its constraints and
            returned this unconstrained caption instead (always True from unconstrained search).
    """

    tokens: list[int]
    log_prob: float
    score: float
    attention: np.ndarray | None = None
    constraints_met: bool = True


def _check(max_length: int, beam_size: int = 1) -> None:
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")


def _check_one_image(state: State, max_length: int, beam_size: int, num_return: int, search: str) -> None:
    """The argument checks of a beam search over one image (``search`` names it in the message)."""
    _check(max_length, beam_size)
    if not 1 <= num_return <= beam_size:
        raise ValueError(f"num_return must be in 1..beam_size ({beam_size}), got {num_return}")
    if state[0].shape[0] != 1:
        raise ValueError(f"{search} decodes one image: state batch must be 1, got {state[0].shape[0]}")


def greedy_search(
    step: StepFunction,
    state: State,
    start_id: int,
    end_id: int,
    max_length: int = 20,
    processors: LogitsProcessorList | None = None,
) -> list[Hypothesis]:
    """Pick the most probable word at each step, for a batch of B images at once.

    Ties go to the lowest token id (``np.argmax`` returns the first maximum).

    Args:
        step: the decoder step (see :class:`StepFunction`).
        state: initial state, batch first (B rows).
        start_id, end_id: ids of ``<start>`` and ``<end>``.
        max_length: most words per caption (``<end>`` not counted).
        processors: edits applied to the log-probabilities before each choice.

    Returns:
        one :class:`Hypothesis` per batch row (score = log_prob).

    Raises:
        ValueError: ``max_length`` < 1.
    """
    _check(max_length)
    batch = state[0].shape[0]
    tokens = np.full((batch,), start_id, np.int32)
    out = np.full((batch, max_length + 1), end_id, np.int32)
    total = np.zeros((batch,), np.float32)
    done = np.zeros((batch,), bool)
    rows = np.arange(batch)
    attn = []
    for t in range(max_length + 1):
        log_probs, state, alpha = step(tokens, state)
        if processors:
            log_probs = processors(log_probs, out[:, :t])
        if t == max_length:  # out of room: force <end>
            tokens = np.full((batch,), end_id, np.int32)
        else:
            tokens = np.argmax(log_probs, axis=-1).astype(np.int32)
        chosen = log_probs[rows, tokens]
        total += np.where(done | ~np.isfinite(chosen), np.float32(0.0), chosen)
        out[:, t] = np.where(done, end_id, tokens)
        if alpha is not None:
            attn.append(np.array(alpha))
        done |= tokens == end_id
        if done.all():
            break
    hyps = []
    for b in range(batch):
        seq = out[b].tolist()
        n = seq.index(end_id)
        a = (
            np.stack([x[b] for x in attn[:n]])
            if attn and n
            else (np.zeros((0, attn[0].shape[-1]), np.float32) if attn else None)
        )
        hyps.append(Hypothesis(seq[:n], float(total[b]), float(total[b]), a))
    return hyps


def _nth_best_bound(flat: np.ndarray, n: int) -> float:
    """A lower bound of the ``n``-th largest entry of ``flat (N,)`` (``n`` < N) that few entries pass.

    The ``n``-th largest of the maxima of ``4n`` disjoint blocks: those maxima are ``n`` distinct
    entries at least as large, so every one of the ``n`` best passes ``>=`` it. One reduction
    over the scores instead of a partition of all of them.
    """
    block = flat.size // (4 * n)
    if block < 8:  # too few entries for blocks to pay: the exact n-th largest
        return float(np.partition(flat, flat.size - n)[flat.size - n])
    maxima = flat[: block * 4 * n].reshape(4 * n, block).max(axis=1).tolist()  # 4n entries
    maxima.sort(reverse=True)
    return maxima[n - 1]


def best_candidates(scores: np.ndarray, n: int) -> list[tuple[float, int, int]]:
    """The ``n`` best entries of ``scores float32 (K, V)`` as ``(score, row, token)``, best first.

    Order: higher score, then lower token id, then lower row (beam) index, whatever the
    platform's selection algorithm does with ties (``np.argpartition`` breaks them
    differently on x86 and aarch64). A block maximum bounds the ``n``-th best from below, and
    only the few entries above the bound are sorted, in Python: a beam step's log-probabilities
    arrive in a cache the interpreter has just filled, where each numpy call costs microseconds.

    Raises:
        ValueError: ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    vocab = scores.shape[1]
    flat = scores.reshape(-1)
    if n < flat.size:  # every entry at least as good as the n-th best, ties at the boundary included
        bound = _nth_best_bound(flat, n)
        if bound == -math.inf:  # most blocks -inf (padding rows, constrained states): the exact one
            bound = flat[np.argpartition(flat, flat.size - n)[flat.size - n]]
        idx = np.flatnonzero(flat >= bound)
    else:
        idx = np.arange(flat.size)
    if idx.size > 8 * n + 64:  # many ties at the bound (e.g. -inf): numpy sorts them
        rows, tokens = np.divmod(idx, vocab)
        order = np.lexsort((rows, tokens, -flat[idx]))[:n]
        return list(zip(flat[idx[order]].tolist(), rows[order].tolist(), tokens[order].tolist()))
    values, ids = flat[idx].tolist(), idx.tolist()
    if len(values) > n:  # int8 log-probabilities tie often: keep the n best values and their ties
        nth = sorted(values, reverse=True)[n - 1]
        pairs = [(v, i) for v, i in zip(values, ids) if v >= nth]
    else:
        pairs = list(zip(values, ids))
    # idx = row * V + token: ties on the token go to the lower row, i.e. the lower idx
    best = sorted(pairs, key=lambda c: (-c[0], c[1] % vocab, c[1]))[:n]
    return [(score, i // vocab, i % vocab) for score, i in best]


def top_candidates(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best entries of ``scores (K, V)`` as ``(rows, tokens)`` int64 arrays, best first,
    in the order of :func:`best_candidates`.

    Raises:
        ValueError: ``n`` < 1.
    """
    best = best_candidates(scores, n)
    return np.array([c[1] for c in best], np.int64), np.array([c[2] for c in best], np.int64)


def beam_search(
    step: StepFunction,
    state: State,
    start_id: int,
    end_id: int,
    beam_size: int = 3,
    max_length: int = 20,
    length_penalty: float = 0.0,
    num_return: int = 1,
    processors: LogitsProcessorList | None = None,
) -> list[Hypothesis]:
    """Beam search for one image.

    Keeps the ``beam_size`` best partial captions; a caption ends when it emits ``<end>``.
    Finished captions are ranked by ``log_prob / length ** length_penalty`` (length counts
    ``<end>``; ``length_penalty`` 0 ranks by total log-probability, > 0 favours longer
    captions). Search stops when ``beam_size`` captions have finished and no live beam can
    still beat the worst of them, or at ``max_length`` words. Ties: see :func:`top_candidates`;
    finished captions of equal score keep the order they finished in.

    The step always runs with ``beam_size`` rows: the first step repeats the image's state
    ``beam_size`` times with all but one row scored -inf, so an interpreter is sized once.
    Per step the search makes few arrays: the step's log-probabilities become the candidate
    scores in place, the words and attention rows so far live in ``(K, max_length)`` arrays
    whose rows are reordered with the state, and only the ``2K`` best candidates reach Python.

    Args:
        step: the decoder step, called with B = ``beam_size``.
        state: initial state for one image (each array with leading dimension 1).
        start_id, end_id: ids of ``<start>`` and ``<end>``.
        beam_size: K, beams kept per step.
        max_length: most words per caption (``<end>`` not counted).
        length_penalty: exponent α of the length normalisation.
        num_return: n-best size (<= ``beam_size``).
        processors: edits applied to the log-probabilities before each choice; they see the
            words so far as ``int32 (K, t)``.

    Returns:
        up to ``num_return`` hypotheses, best first.

    Raises:
        ValueError: ``beam_size`` or ``max_length`` < 1, ``num_return`` not in 1..beam_size,
            or a state not of batch 1.
    """
    _check_one_image(state, max_length, beam_size, num_return, "beam_search")
    K = beam_size
    state = tuple(np.repeat(s, K, axis=0) for s in state)
    tokens = np.full((K,), start_id, np.int32)
    scores = np.full((K, 1), -np.inf, np.float32)  # (K, 1) running log-probs; rows 1.. are padding at t = 0
    scores[0] = 0.0
    words = np.zeros((K, max_length), np.int32)  # (K, T) row r's first t entries: its words so far
    alphas: np.ndarray | None = None  # (K, T, L) the attention row of each of those words
    identity = list(range(K))
    finished: list[Hypothesis] = []

    def norm(logp: float, length: int) -> float:
        return logp / (length**length_penalty) if length_penalty else logp

    def finish(row: int, logp: float, t: int) -> None:  # the caption of `row`: its t words, then <end>
        attention = alphas[row, :t].copy() if alphas is not None else None
        finished.append(Hypothesis(words[row, :t].tolist(), logp, norm(logp, t + 1), attention))

    for t in range(max_length + 1):
        log_probs, state, alpha = step(tokens, state)  # (K, V)
        if alpha is not None and alphas is None:
            alphas = np.zeros((K, max_length, alpha.shape[-1]), alpha.dtype)
        if not log_probs.flags.writeable:
            log_probs = log_probs.copy()
        if processors:
            log_probs = processors(log_probs, words[:, :t])
        if t == max_length:  # out of room: every live beam ends here
            end_lp = log_probs[:, end_id]
            for row in range(K):
                if np.isfinite(scores[row, 0]):
                    s = scores[row, 0] + (end_lp[row] if np.isfinite(end_lp[row]) else np.float32(0.0))
                    finish(row, float(s), t)
            break
        log_probs += scores  # (K, V) candidate scores, float32
        keep_rows, keep_tokens, keep_scores = [], [], []
        for score, row, token in best_candidates(log_probs, min(2 * K, log_probs.size)):
            if not math.isfinite(score):
                break
            if token == end_id:  # the attention rows of the words before <end>
                finish(row, score, t)
            else:
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score)
                if len(keep_rows) == K:
                    break
        if not keep_rows:
            break
        finished.sort(key=lambda h: -h.score)
        del finished[K:]
        if len(finished) >= K and (
            length_penalty <= 0
            and np.float32(keep_scores[0]) <= finished[-1].score
            or length_penalty > 0
            and norm(keep_scores[0], t + 2) < finished[-1].score
        ):
            break
        while len(keep_rows) < K:  # fewer live candidates than beams: pad, scored -inf, to keep B constant
            keep_rows.append(keep_rows[0])
            keep_tokens.append(keep_tokens[0])
            keep_scores.append(-math.inf)
        if keep_rows != identity:
            idx = np.array(keep_rows)
            state = tuple(s[idx] for s in state)
            words = words[idx]
            if alphas is not None and alpha is not None:
                alphas = alphas[idx]
                alphas[:, t] = alpha[idx]
        elif alphas is not None and alpha is not None:
            alphas[:, t] = alpha
        words[:, t] = keep_tokens
        scores = np.array(keep_scores, np.float32)[:, None]
        tokens = np.array(keep_tokens, np.int32)
    finished.sort(key=lambda h: -h.score)
    return finished[:num_return]
