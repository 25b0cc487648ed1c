"""Constrained beam search (Anderson et al. 2017) on toy step functions whose answers are known."""

import itertools

import numpy as np
import pytest

from edgecap.decoding import ConstraintFSM, beam_search, constrained_beam_search, decoding_processors

START, END = 1, 2


class MarkovStep:
    """Log-probabilities depend only on the previous word: ``table (V, V)``; counts its calls and rows."""

    def __init__(self, table: np.ndarray):
        self.table = table.astype(np.float32)
        self.batches: list[int] = []

    def __call__(self, tokens, state):
        self.batches.append(len(tokens))
        (h,) = state
        return self.table[tokens].copy(), (h + 1,), np.tile(np.float32([0.25, 0.75]), (len(tokens), 1))


def random_table(seed: int, vocab: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(vocab, vocab)) * 2
    logits[:, 0] = -np.inf  # id 0 is <pad>: never emitted
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def state():
    return (np.zeros((1, 1), np.float32),)


def log_prob_of(table: np.ndarray, tokens: list[int]) -> float:
    seq = [START, *tokens, END]
    return float(sum(np.float32(table[a, b]) for a, b in zip(seq, seq[1:])))


def test_fsm_states_are_the_subsets_of_met_constraints():
    fsm = ConstraintFSM([[4, 5], [6]], vocab_size=9)
    assert fsm.num_states == 4 and fsm.accepting == 3
    assert fsm.token_mask.tolist() == [0, 0, 0, 0, 1, 1, 2, 0, 0]
    assert fsm.next_state(0, 5) == 1 and fsm.next_state(1, 6) == 3 and fsm.next_state(2, 7) == 2
    assert fsm.state_of([3, 6, 6, 4]) == 3
    assert fsm.state_of([3, 7]) == 0


@pytest.mark.parametrize("seed", range(20))
def test_no_constraints_is_plain_beam_search(seed):
    table = random_table(seed)
    kwargs = dict(beam_size=3, max_length=6, num_return=3, processors=decoding_processors(0, START, END, 3))
    plain = beam_search(MarkovStep(table), state(), START, END, **kwargs)
    cbs = constrained_beam_search(MarkovStep(table), state(), START, END, [], 9, **kwargs)
    assert [(h.tokens, h.log_prob, h.score) for h in cbs] == [(h.tokens, h.log_prob, h.score) for h in plain]
    assert all(h.constraints_met for h in cbs)


@pytest.mark.parametrize("seed", range(20))
def test_every_caption_meets_every_constraint(seed):
    table = random_table(seed)
    constraints = [[4, 5], [7]]
    step = MarkovStep(table)
    hyps = constrained_beam_search(step, state(), START, END, constraints, 9, beam_size=2, max_length=6, num_return=2)
    assert hyps and all(h.constraints_met for h in hyps)
    for h in hyps:
        assert set(h.tokens) & {4, 5} and 7 in h.tokens
        assert h.log_prob == pytest.approx(log_prob_of(table, h.tokens), abs=1e-4)
        assert h.attention.shape == (len(h.tokens), 2)
    assert set(step.batches) == {4 * 2}  # 2^2 states x beam 2, every step


def test_a_wide_enough_beam_finds_the_best_constrained_caption():
    """With beams per state >= all partial captions, the search is exhaustive: compare with brute force."""
    vocab, length = 5, 3
    table = random_table(3, vocab)
    words = [w for w in range(vocab) if w not in (0, START, END)]
    best = max(
        (log_prob_of(table, list(seq)), list(seq))
        for n in range(1, length + 1)
        for seq in itertools.product(words, repeat=n)
        if 4 in seq
    )
    hyp = constrained_beam_search(
        MarkovStep(table), state(), START, END, [[4]], vocab, beam_size=len(words) ** length, max_length=length
    )[0]
    assert hyp.tokens == best[1]


def test_an_unmeetable_constraint_returns_the_unconstrained_caption_flagged():
    table = random_table(5)
    processors = decoding_processors(0, START, END, 3)  # <unk> = 3 is suppressed: it can never be emitted
    plain = beam_search(MarkovStep(table), state(), START, END, 3, 5, processors=processors)[0]
    hyp = constrained_beam_search(MarkovStep(table), state(), START, END, [[3]], 9, 3, 5, processors=processors)[0]
    assert not hyp.constraints_met
    assert 3 not in hyp.tokens
    assert hyp.score >= plain.score - 1e-6  # the best finished caption of any state


def test_constraints_that_do_not_fit_in_max_length_are_flagged():
    hyp = constrained_beam_search(MarkovStep(random_table(1)), state(), START, END, [[4], [5], [6]], 9, 2, 2)[0]
    assert not hyp.constraints_met and len(hyp.tokens) <= 2


def test_ties_go_to_the_lower_token_then_the_lower_row():
    table = np.full((9, 9), np.log(1 / 8), np.float32)  # every word equally likely
    table[:, 0] = -np.inf
    processors = decoding_processors(0, START, END, 3)
    hyps = constrained_beam_search(MarkovStep(table), state(), START, END, [[6, 7]], 9, 2, 2, 0.0, 2, processors)
    # the best captions meet the constraint in the fewest words; on ties, lower ids first: <end> (2) is the
    # lowest word left, so "6" and "7" finish first with exactly equal scores, in token order.
    assert [h.tokens for h in hyps] == [[6], [7]]
    assert hyps[0].score == hyps[1].score


@pytest.mark.parametrize(
    "constraints, message",
    [([[4], [5], [6], [7], [8]], "at most"), ([[]], "no word ids"), ([[9]], "0..8"), ([[END]], "end_id")],
)
def test_bad_constraints_raise(constraints, message):
    with pytest.raises(ValueError, match=message):
        constrained_beam_search(MarkovStep(random_table(0)), state(), START, END, constraints, 9)
