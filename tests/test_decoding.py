"""Greedy and beam search against hand-built step functions whose best sequence is known."""

import numpy as np
import pytest

from edgecap.decoding import LogitsProcessorList, SuppressTokens, beam_search, greedy_search
from edgecap.decoding.processors import MinLength, NoRepeatNGram

START, END = 1, 2
V = 6


class TableStep:
    """Next-word distribution depends only on the previous word (a Markov chain)."""

    def __init__(self, table: dict[int, dict[int, float]]):
        self.table = table
        self.calls = 0

    def __call__(self, tokens, state):
        self.calls += 1
        (counter,) = state
        out = np.full((len(tokens), V), -np.inf, np.float32)
        for b, t in enumerate(tokens):
            for w, p in self.table[int(t)].items():
                out[b, w] = np.log(p)
        alpha = np.tile(np.eye(4, dtype=np.float32)[min(int(counter[0, 0]), 3)], (len(tokens), 1))
        return out, (counter + 1,), alpha


# Greedy takes 3 (p=.6) then must end with p=.5*... ; the best sequence starts with 4 (p=.4)
# and then is certain: P(4, 5, END) = .4 > P(3, x, END) = .6 * .5 = .3.
TRAP = {START: {3: 0.6, 4: 0.4}, 3: {5: 0.5, 4: 0.5}, 4: {5: 1.0}, 5: {END: 1.0}}


def state():
    return (np.zeros((1, 1), np.float32),)


def test_greedy_falls_into_the_trap_and_beam_escapes_it():
    g = greedy_search(TableStep(TRAP), state(), START, END, max_length=10)[0]
    assert g.tokens[0] == 3
    b = beam_search(TableStep(TRAP), state(), START, END, beam_size=2, max_length=10)[0]
    assert b.tokens == [4, 5]
    assert b.log_prob == pytest.approx(np.log(0.4), abs=1e-5)


def test_nbest_is_sorted_and_scores_are_log_probs():
    hyps = beam_search(TableStep(TRAP), state(), START, END, beam_size=3, max_length=10, num_return=3)
    assert [h.tokens for h in hyps][:2] == [[4, 5], [3, 5]]
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    assert hyps[1].log_prob == pytest.approx(np.log(0.3), abs=1e-5)


def test_length_penalty_prefers_longer_captions():
    # [4] has p=.5; [4, 3, 5] has p=.5*.5*.4=.1, but wins once scores are divided by length².
    step_table = {START: {4: 1.0}, 4: {END: 0.5, 3: 0.5}, 3: {3: 0.6, 5: 0.4}, 5: {END: 1.0}}
    plain = beam_search(TableStep(step_table), state(), START, END, beam_size=3, max_length=8)[0]
    assert plain.tokens == [4]
    long = beam_search(TableStep(step_table), state(), START, END, beam_size=3, max_length=8, length_penalty=2.0)[0]
    assert len(long.tokens) > 1


def test_attention_rows_follow_the_words():
    b = beam_search(TableStep(TRAP), state(), START, END, beam_size=2, max_length=10)[0]
    assert b.attention.shape == (2, 4)
    assert b.attention[:, :2].argmax(axis=1).tolist() == [0, 1]  # step t's map for word t
    g = greedy_search(TableStep(TRAP), state(), START, END, max_length=10)[0]
    assert g.attention.shape == (len(g.tokens), 4)


def test_max_length_forces_end():
    loop = {START: {3: 1.0}, 3: {3: 0.99, END: 0.01}}
    assert greedy_search(TableStep(loop), state(), START, END, max_length=4)[0].tokens == [3, 3, 3, 3]
    no_end = {START: {3: 1.0}, 3: {3: 1.0}}  # <end> never probable: the search must still stop
    assert greedy_search(TableStep(no_end), state(), START, END, max_length=4)[0].tokens == [3, 3, 3, 3]
    hyp = beam_search(TableStep(no_end), state(), START, END, beam_size=2, max_length=4)[0]
    assert hyp.tokens == [3, 3, 3, 3] and hyp.attention.shape == (4, 4)


def test_suppressed_tokens_are_never_emitted():
    table = {START: {3: 0.9, 4: 0.1}, 3: {END: 1.0}, 4: {END: 1.0}}
    suppress = LogitsProcessorList([SuppressTokens([3])])
    assert greedy_search(TableStep(table), state(), START, END, 5, suppress)[0].tokens == [4]
    assert beam_search(TableStep(table), state(), START, END, 2, 5, processors=suppress)[0].tokens == [4]


def test_min_length_blocks_an_empty_caption():
    table = {START: {END: 0.9, 3: 0.1}, 3: {END: 1.0}}
    procs = LogitsProcessorList([MinLength(1, END)])
    assert greedy_search(TableStep(table), state(), START, END, 5, procs)[0].tokens == [3]


def test_no_repeat_ngram_stops_a_loop():
    loop = {START: {3: 1.0}, 3: {4: 0.9, END: 0.1}, 4: {3: 0.9, END: 0.1}}  # "3 4 3 4 ..." until max_length
    assert greedy_search(TableStep(loop), state(), START, END, 8)[0].tokens == [3, 4] * 4
    bigrams = LogitsProcessorList([NoRepeatNGram(2)])
    assert greedy_search(TableStep(loop), state(), START, END, 8, bigrams)[0].tokens == [3, 4, 3]
    for hyp in beam_search(TableStep(loop), state(), START, END, 3, 8, num_return=3, processors=bigrams):
        pairs = list(zip(hyp.tokens, hyp.tokens[1:]))
        assert len(pairs) == len(set(pairs)), hyp.tokens
    trigrams = LogitsProcessorList([NoRepeatNGram(3)])
    assert greedy_search(TableStep(loop), state(), START, END, 8, trigrams)[0].tokens == [3, 4, 3, 4]


def test_no_repeat_ngram_bans_only_the_completing_word():
    log_probs = np.zeros((2, V), np.float32)
    seqs = np.array([[3, 4, 5, 3, 4], [3, 4, 5, 4, 4]])  # row 0 ends with "3 4": "5" would repeat "3 4 5"
    out = NoRepeatNGram(3)(log_probs, seqs)
    assert np.isneginf(out[0]).tolist() == [False] * 5 + [True]
    assert not np.isneginf(out[1]).any()
    for bad in (1, -1):
        with pytest.raises(ValueError, match="ngram_size"):
            NoRepeatNGram(bad)


def test_greedy_decodes_a_batch():
    s = (np.zeros((3, 1), np.float32),)
    hyps = greedy_search(TableStep(TRAP), s, START, END, max_length=10)
    assert len(hyps) == 3 and all(h.tokens == hyps[0].tokens for h in hyps)


@pytest.mark.parametrize("kwargs", [dict(beam_size=0), dict(max_length=0), dict(num_return=3, beam_size=2)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        beam_search(TableStep(TRAP), state(), START, END, **kwargs)


def test_beam_search_needs_one_image():
    with pytest.raises(ValueError, match="one image"):
        beam_search(TableStep(TRAP), (np.zeros((2, 1)),), START, END)


def test_top_candidates_breaks_ties_by_token_then_beam():
    from edgecap.decoding import top_candidates

    scores = np.array([[-1.0, -0.5, -0.5, -2.0], [-0.5, -0.5, -3.0, -0.25]], np.float32)
    rows, tokens = top_candidates(scores, 5)
    # -0.25 first; then the four -0.5 ties by token id, then beam index; then -1.0
    assert list(zip(rows.tolist(), tokens.tolist())) == [(1, 3), (1, 0), (0, 1), (1, 1), (0, 2)]
    for n in range(1, 9):  # any cut keeps the same order: the boundary ties are all considered
        r, t = top_candidates(scores, n)
        full_r, full_t = top_candidates(scores, 8)
        assert r.tolist() == full_r[:n].tolist() and t.tolist() == full_t[:n].tolist()
    with pytest.raises(ValueError):
        top_candidates(scores, 0)


class TiedStep:
    """Every word equally probable at every step but <end> at the last: the search is all ties."""

    def __init__(self, words=(3, 4, 5), length=3):
        self.words, self.length, self.batches = words, length, []

    def __call__(self, tokens, state):
        (t,) = state
        self.batches.append(len(tokens))
        out = np.full((len(tokens), V), -np.inf, np.float32)
        step = int(t[0, 0])
        if step < self.length:
            out[:, list(self.words)] = np.log(1.0 / len(self.words))
        else:
            out[:, END] = 0.0
        return out, (t + 1,), None


def test_ties_go_to_the_lowest_token_ids_in_greedy_and_beam_search():
    assert greedy_search(TiedStep(), state(), START, END, 10)[0].tokens == [3, 3, 3]
    step = TiedStep()
    hyps = beam_search(step, state(), START, END, beam_size=3, max_length=10, num_return=3)
    # step 1 keeps [3] [4] [5]; later steps, all ties, extend each beam with token 3 (lowest id
    # first, then lowest beam); the tied finished captions keep their beams' order
    assert [h.tokens for h in hyps] == [[3, 3, 3], [4, 3, 3], [5, 3, 3]]
    assert len({h.log_prob for h in hyps}) == 1
    assert set(step.batches) == {3}  # the step always runs with beam_size rows: one interpreter size
