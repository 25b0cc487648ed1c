"""The plain beam search of revision 1caa84c (its candidate selection and n-gram ban too), kept
as the reference the fast search in :mod:`edgecap.decoding.search` must match token for token
(``tests/test_search_parity.py``, ``scripts/search_parity.py``). Readable rather than fast: one
array made per candidate, the n-gram check rebuilt from the whole caption at every step.
Greedy search did not change, so it has no reference here.
"""

from __future__ import annotations

import numpy as np

from edgecap.decoding import beam_search as fast_beam_search
from edgecap.decoding.processors import LogitsProcessor, LogitsProcessorList, NoRepeatNGram
from edgecap.decoding.search import Hypothesis, State, StepFunction, _check_one_image


def top_candidates(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best entries of ``scores (K, V)`` as ``(rows, tokens)``, best first.

    Order: higher score, then lower token id, then lower row (beam) index, whatever the
    platform's selection algorithm does with ties (``np.argpartition`` breaks them
    differently on x86 and aarch64).

    Raises:
        ValueError: ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    vocab = scores.shape[1]
    flat = scores.ravel()
    if n < flat.size:  # every entry at least as good as the n-th best, ties at the boundary included
        nth = np.partition(flat, flat.size - n)[flat.size - n]
        idx = np.flatnonzero(flat >= nth)
    else:
        idx = np.arange(flat.size)
    rows, tokens = np.divmod(idx, vocab)
    order = np.lexsort((rows, tokens, -flat[idx]))[:n]
    return rows[order], tokens[order]


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

    Args:
        step: the decoder step, called with B = ``beam_size``.
        state: initial state for one image (each array with leading dimension 1).
        start_id, end_id: ids of ``<start>`` and ``<end>``.
        beam_size: K, beams kept per step.
        max_length: most words per caption (``<end>`` not counted).
        length_penalty: exponent α of the length normalisation.
        num_return: n-best size (<= ``beam_size``).
        processors: edits applied to the log-probabilities before each choice.

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
    scores = np.full((K,), -np.inf, np.float32)  # (K,) running log-probs; rows 1.. are padding at t = 0
    scores[0] = 0.0
    seqs: list[list[int]] = [[] for _ in range(K)]
    attns: list[list[np.ndarray]] = [[] for _ in range(K)]
    finished: list[Hypothesis] = []

    def norm(logp: float, length: int) -> float:
        return logp / (length**length_penalty) if length_penalty else logp

    def finish(row: int, logp: float) -> None:
        seq = seqs[row]
        finished.append(
            Hypothesis(
                list(seq),
                logp,
                norm(logp, len(seq) + 1),
                np.stack(attns[row]) if attns[row] else (np.zeros((0, attn_size), np.float32) if attn_size else None),
            )
        )

    attn_size = 0
    for t in range(max_length + 1):
        log_probs, state, alpha = step(tokens, state)
        if alpha is not None:
            attn_size = alpha.shape[-1]
        if processors:
            log_probs = processors(log_probs, np.asarray(seqs, np.int64).reshape(len(seqs), t))
        if t == max_length:  # out of room: every live beam ends here
            end_lp = log_probs[:, end_id]
            for row in range(len(seqs)):
                if np.isfinite(scores[row]):
                    finish(row, float(scores[row] + (end_lp[row] if np.isfinite(end_lp[row]) else np.float32(0.0))))
            break
        cand = scores[:, None] + log_probs  # (K, V) float32
        rows, toks = top_candidates(cand, min(2 * K, cand.size))
        keep_rows, keep_tokens, keep_scores = [], [], []
        for row, token in zip(rows.tolist(), toks.tolist()):
            score = cand[row, token]
            if not np.isfinite(score):
                break
            if token == end_id:  # the attention rows of the words before <end>
                finish(row, float(score))
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
        best_alive = norm(float(keep_scores[0]), t + 2)
        if len(finished) >= K and (
            length_penalty <= 0
            and keep_scores[0] <= finished[-1].score
            or length_penalty > 0
            and best_alive < finished[-1].score
        ):
            break
        while len(keep_rows) < K:  # fewer live candidates than beams: pad, scored -inf, to keep B constant
            keep_rows.append(keep_rows[0])
            keep_tokens.append(keep_tokens[0])
            keep_scores.append(-np.inf)
        idx = np.asarray(keep_rows)
        if (idx != np.arange(K)).any():
            state = tuple(s[idx] for s in state)
        seqs = [seqs[r] + [tok] for r, tok in zip(keep_rows, keep_tokens)]
        attns = [attns[r] + ([alpha[r]] if alpha is not None else []) for r in keep_rows]
        scores = np.asarray(keep_scores, np.float32)
        tokens = np.asarray(keep_tokens, np.int32)
    finished.sort(key=lambda h: -h.score)
    return finished[:num_return]


class ReferenceNoRepeatNGram(LogitsProcessor):
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
            banned = [seq[i + n - 1] for i in range(t - n + 1) if seq[i : i + n - 1] == prefix]
            log_probs[row, banned] = -np.inf
        return log_probs


def reference_processors(processors: LogitsProcessorList) -> LogitsProcessorList:
    """The same processors with the plain n-gram ban."""
    return LogitsProcessorList(ReferenceNoRepeatNGram(p.n) if isinstance(p, NoRepeatNGram) else p for p in processors)


def same_hypotheses(fast: list[Hypothesis], plain: list[Hypothesis], what: str) -> list[str]:
    """What differs between two n-best lists: words, log-probability, score, attention."""
    found = [] if len(fast) == len(plain) else [f"{what}: {len(fast)} hypotheses against {len(plain)}"]
    for i, (a, b) in enumerate(zip(fast, plain)):
        if a.tokens != b.tokens or a.log_prob != b.log_prob or a.score != b.score:
            found.append(f"{what} #{i}: {a.tokens} ({a.log_prob}) against {b.tokens} ({b.log_prob})")
        elif (a.attention is None) != (b.attention is None) or (
            a.attention is not None and not np.array_equal(a.attention, b.attention)
        ):
            found.append(f"{what} #{i}: attention differs")
    return found


def photo_differences(captioner, pixels: np.ndarray, beam_size: int = 3, num_return: int = 3) -> list[str]:
    """What differs between the fast and the plain beam search of one photo ([] when nothing
    does), with the model's own processors, the ``num_return``-best list and the attention maps
    compared."""
    m = captioner.metadata
    state, memory = captioner.encode(pixels)
    runs = []
    for beam, procs in (
        (fast_beam_search, captioner.suppress),
        (beam_search, reference_processors(captioner.suppress)),
    ):
        step = captioner.step_function(memory, attention=True)
        runs.append(
            beam(step, state, m.start_id, m.end_id, beam_size, m.max_length, m.length_penalty, num_return, procs)
        )
    return same_hypotheses(*runs, f"beam {beam_size}")
