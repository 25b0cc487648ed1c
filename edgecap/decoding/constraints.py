"""Constrained beam search: captions that must contain given words (numpy only).

Anderson, Fernando, Johnson & Gould, "Guided Open Vocabulary Image Captioning with Constrained
Beam Search", EMNLP 2017, Section 3. Each constraint is *disjunctive*: a set of word ids of which
any one satisfies it (``{cat, cats, kitten}``). A finite-state machine tracks which constraints
a partial caption has met; with ``m`` constraints its states are the ``2^m`` subsets of them
(the paper's Figure 2 for single-word constraints), state 0 meets none and state ``2^m - 1``
(accepting) meets all. Each state keeps its own ``beam_size`` beams; a word that meets a
constraint moves a beam from state ``s`` to ``s | bit``. Finished captions count only in the
accepting state.

Ties are broken as in :func:`edgecap.decoding.search.top_candidates` (higher score, then lower
token id, then lower row), rows numbered state-major (row = state * beam_size + beam), so the
search gives the same captions on every CPU (and in the Java core, ``Search.java``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from edgecap.decoding.processors import LogitsProcessorList
from edgecap.decoding.search import Hypothesis, State, StepFunction, _check_one_image, top_candidates

MAX_CONSTRAINTS = 4  #: 2^4 = 16 states × beam_size rows per step; more is slower than it is useful


class ConstraintFSM:
    """The finite-state machine of ``m`` disjunctive single-word constraints.

    Args:
        constraints: ``m`` sets of word ids; a caption meets constraint ``i`` when it contains
            any word of set ``i``.
        vocab_size: V, the number of word ids.

    Attributes:
        num_states: ``2^m``; state ``s`` is the bit set of the constraints met.
        accepting: ``2^m - 1``.
        token_mask: ``int64 (V,)``, the bits of the constraints each word meets (0 for most words).

    Raises:
        ValueError: more than :data:`MAX_CONSTRAINTS` constraints, an empty constraint, or an id
            outside ``0..V-1``.
    """

    def __init__(self, constraints: Sequence[Iterable[int]], vocab_size: int):
        sets = [sorted(set(int(t) for t in c)) for c in constraints]
        if len(sets) > MAX_CONSTRAINTS:
            raise ValueError(f"at most {MAX_CONSTRAINTS} constraints, got {len(sets)}")
        self.token_mask = np.zeros((vocab_size,), np.int64)
        for i, ids in enumerate(sets):
            if not ids:
                raise ValueError(f"constraint {i} has no word ids")
            if ids[0] < 0 or ids[-1] >= vocab_size:
                raise ValueError(f"constraint {i}: word ids must be in 0..{vocab_size - 1}, got {ids}")
            self.token_mask[ids] |= 1 << i
        self.constraints = sets
        self.num_states = 1 << len(sets)
        self.accepting = self.num_states - 1
        self.constraint_tokens = np.flatnonzero(self.token_mask)  # (n,) ids that meet some constraint
        self._leaving: dict[int, np.ndarray | None] = {}
        self._moving: dict[tuple[int, int], np.ndarray] = {}

    def leaving(self, target: int) -> np.ndarray | None:
        """``bool (V,)``: the words that would take a beam out of state ``target`` (None if none)."""
        if target not in self._leaving:
            outside = (self.token_mask & ~target) != 0
            self._leaving[target] = outside if outside.any() else None
        return self._leaving[target]

    def moving(self, source: int, target: int) -> np.ndarray:
        """The constraint word ids that take a beam from state ``source`` to ``target``."""
        key = (source, target)
        if key not in self._moving:
            ct = self.constraint_tokens
            self._moving[key] = ct[(source | self.token_mask[ct]) == target]
        return self._moving[key]

    def next_state(self, state: int, token: int) -> int:
        return state | int(self.token_mask[token])

    def state_of(self, tokens: Iterable[int]) -> int:
        """The state a caption of ``tokens`` ends in."""
        s = 0
        for t in tokens:
            s |= int(self.token_mask[t])
        return s


def _state_candidates(
    fsm: ConstraintFSM, cand: np.ndarray, target: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n`` best ``(rows, tokens, scores)`` that land in state ``target``, best first.

    Rows already in ``target`` may take any word that meets no constraint outside it; rows in a
    strict subset of ``target`` may take a constraint word that completes it (Anderson et al.,
    Algorithm 1: "candidates" of each state).
    """
    K = cand.shape[0] // fsm.num_states
    rows_list, toks_list = [], []
    same = cand[target * K : (target + 1) * K]  # (K, V) rows in `target`
    if np.isfinite(same).any():
        outside = fsm.leaving(target)  # words that would leave `target`
        if outside is not None:
            same = same.copy()
            same[:, outside] = -np.inf
        r, t = top_candidates(same, min(n, same.size))
        rows_list.append(r + target * K)
        toks_list.append(t)
    for s in range(target):  # strict subsets of `target` move in by a constraint word
        if s & ~target or s == target:
            continue
        moving = fsm.moving(s, target)
        if not moving.size:
            continue
        block = cand[s * K : (s + 1) * K][:, moving]  # (K, n_moving)
        rr, cc = np.nonzero(np.isfinite(block))
        rows_list.append(rr + s * K)
        toks_list.append(moving[cc])
    if not rows_list:
        empty = np.zeros((0,), np.int64)
        return empty, empty, np.zeros((0,), np.float32)
    rows, toks = np.concatenate(rows_list), np.concatenate(toks_list)
    scores = cand[rows, toks]
    keep = np.isfinite(scores)
    rows, toks, scores = rows[keep], toks[keep], scores[keep]
    order = np.lexsort((rows, toks, -scores))[:n]
    return rows[order], toks[order], scores[order]


def constrained_beam_search(
    step: StepFunction,
    state: State,
    start_id: int,
    end_id: int,
    constraints: Sequence[Iterable[int]],
    vocab_size: int,
    beam_size: int = 3,
    max_length: int = 20,
    length_penalty: float = 0.0,
    num_return: int = 1,
    processors: LogitsProcessorList | None = None,
) -> list[Hypothesis]:
    """Beam search whose captions must contain one word of each constraint (Anderson et al. 2017).

    Every state of the :class:`ConstraintFSM` keeps ``beam_size`` beams, so the step runs with
    ``B = 2^m * beam_size`` rows (rows of states not yet reached are scored -inf). Finished
    captions are ranked as in :func:`edgecap.decoding.search.beam_search`
    (``log_prob / length ** length_penalty``). The search stops when the accepting state holds
    ``beam_size`` finished captions that no live beam of any state can beat, or at
    ``max_length`` words.

    If no caption meets every constraint within ``max_length`` words (a word the model never
    emits, too many constraints for the length), the best finished captions of any state are
    returned instead, with ``constraints_met=False``; with no constraints this is plain beam search.

    Args:
        step: the decoder step, called with ``B = 2^m * beam_size``.
        state: initial state for one image (each array with leading dimension 1).
        start_id, end_id: ids of ``<start>`` and ``<end>`` (``end_id`` must not be a constraint).
        constraints: ``m`` (<= :data:`MAX_CONSTRAINTS`) sets of word ids, any one of which meets it.
        vocab_size: V, the width of the step's log-probabilities.
        beam_size: K, beams per state.
        max_length: most words per caption (``<end>`` not counted).
        length_penalty: exponent α of the length normalisation.
        num_return: n-best size (<= ``beam_size``).
        processors: edits applied to the log-probabilities before each choice.

    Returns:
        up to ``num_return`` hypotheses, best first, each with ``constraints_met``.

    Raises:
        ValueError: as :func:`beam_search`; bad constraints (see :class:`ConstraintFSM`), or
            ``end_id`` in a constraint.
    """
    _check_one_image(state, max_length, beam_size, num_return, "constrained_beam_search")
    fsm = ConstraintFSM(constraints, vocab_size)
    if fsm.token_mask[end_id]:
        raise ValueError(f"end_id {end_id} cannot be a constraint word")
    K, S = beam_size, fsm.num_states
    R = S * K
    state = tuple(np.repeat(s, R, axis=0) for s in state)
    tokens = np.full((R,), start_id, np.int32)
    scores = np.full((R,), -np.inf, np.float32)  # (R,) running log-probs, row = state * K + beam
    scores[0] = 0.0
    words = np.zeros((R, max_length), np.int64)  # (R, T) row r's first t entries: its words so far
    alphas: np.ndarray | None = None  # (R, T, L) the attention row of each of those words
    finished: list[list[Hypothesis]] = [[] for _ in range(S)]

    def norm(logp: float, length: int) -> float:
        return logp / (length**length_penalty) if length_penalty else logp

    def finish(row: int, logp: float, t: int) -> None:  # the caption of `row`: its t words, then <end>
        att = alphas[row, :t].copy() if alphas is not None else None
        s = row // K
        finished[s].append(Hypothesis(words[row, :t].tolist(), logp, norm(logp, t + 1), att, s == fsm.accepting))
        finished[s].sort(key=lambda h: -h.score)
        del finished[s][K:]

    for t in range(max_length + 1):
        log_probs, state, alpha = step(tokens, state)
        if alpha is not None and alphas is None:
            alphas = np.zeros((R, max_length, alpha.shape[-1]), np.float32)
        if processors:
            log_probs = processors(log_probs, words[:, :t])
        if t == max_length:  # out of room: every live beam ends here
            end_lp = log_probs[:, end_id]
            for row in range(R):
                if np.isfinite(scores[row]):
                    finish(row, float(scores[row] + (end_lp[row] if np.isfinite(end_lp[row]) else np.float32(0.0))), t)
            break
        cand = scores[:, None] + log_probs  # (R, V) float32
        keep_rows = np.zeros((R,), np.int64)
        keep_tokens = np.full((R,), end_id, np.int32)
        keep_scores = np.full((R,), -np.inf, np.float32)
        for target in range(S):
            rows, toks, sc = _state_candidates(fsm, cand, target, 2 * K)
            n = 0
            for row, token, score in zip(rows.tolist(), toks.tolist(), sc.tolist()):
                if token == end_id:
                    finish(row, float(score), t)
                    continue
                keep_rows[target * K + n], keep_tokens[target * K + n], keep_scores[target * K + n] = row, token, score
                n += 1
                if n == K:
                    break
            if n:  # padding rows repeat a live row of this state, scored -inf
                keep_rows[target * K + n : (target + 1) * K] = keep_rows[target * K]
                keep_tokens[target * K + n : (target + 1) * K] = keep_tokens[target * K]
        if not np.isfinite(keep_scores).any():
            break
        acc = finished[fsm.accepting]
        best_alive = float(keep_scores.max())
        if len(acc) >= K and (
            (length_penalty <= 0 and best_alive <= acc[-1].score)
            or (length_penalty > 0 and norm(best_alive, t + 2) < acc[-1].score)
        ):
            break
        if (keep_rows != np.arange(R)).any():
            state = tuple(s[keep_rows] for s in state)
            words = words[keep_rows]
            if alphas is not None:
                alphas = alphas[keep_rows]
        words[:, t] = keep_tokens  # every row t + 1 words
        if alphas is not None and alpha is not None:
            alphas[:, t] = alpha[keep_rows]
        scores = keep_scores
        tokens = keep_tokens
    if finished[fsm.accepting]:
        return finished[fsm.accepting][:num_return]
    unmet = sorted((h for hyps in finished for h in hyps), key=lambda h: -h.score)  # stable: state order on ties
    return unmet[:num_return]
