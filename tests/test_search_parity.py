"""The fast beam search gives the plain search's captions token for token (issue 30).

The plain search of revision 1caa84c lives in ``reference_search.py``; the full check over
1,000 Flickr8k test photos is ``scripts/search_parity.py``.
"""

import numpy as np
import pytest
import reference_search as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecap.decoding import beam_search, decoding_processors, top_candidates
from edgecap.runtime import Captioner, CaptionerOptions
from edgecap.runtime.presets import preset_names

START, END, PAD, UNK = 1, 2, 0, 3


class QuantizedMarkovStep:
    """A random Markov chain over ``vocab`` words whose log-probabilities are multiples of
    1/16 (as an int8 output dequantizes them), so that exact ties are common; a word never
    seen before gets -inf with probability 1/4. Attention: a fixed random row per word."""

    def __init__(self, seed: int, vocab: int):
        rng = np.random.default_rng(seed)
        table = np.round(np.log(rng.dirichlet(np.full(vocab, 0.3), size=vocab)) * 16) / 16
        table[rng.random(table.shape) < 0.25] = -np.inf
        table[:, END] = np.maximum(table[:, END], -3.0)  # every word may end the caption
        self.table = table.astype(np.float32)
        self.alpha = rng.random((vocab, 5)).astype(np.float32)

    def __call__(self, tokens, state):
        (h,) = state
        return self.table[tokens].copy(), (h + 1,), self.alpha[tokens]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    vocab=st.integers(5, 300),
    beam=st.integers(1, 6),
    max_length=st.integers(1, 12),
    length_penalty=st.sampled_from([0.0, 0.7, 2.0, -0.5]),
    ngram=st.sampled_from([0, 2, 3]),
    num_return=st.integers(1, 6),
)
def test_fast_search_equals_the_plain_search(seed, vocab, beam, max_length, length_penalty, ngram, num_return):
    step = QuantizedMarkovStep(seed, vocab)
    state = (np.zeros((1, 1), np.float32),)
    procs = decoding_processors(PAD, START, END, UNK, ngram)
    plain_procs = ref.reference_processors(procs)
    n = min(num_return, beam)
    fast = beam_search(step, state, START, END, beam, max_length, length_penalty, n, procs)
    plain = ref.beam_search(step, state, START, END, beam, max_length, length_penalty, n, plain_procs)
    assert ref.same_hypotheses(fast, plain, "beam") == []


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 12), vocab=st.integers(1, 4000), n=st.integers(1, 30))
def test_top_candidates_equals_the_plain_selection(seed, rows, vocab, n):
    rng = np.random.default_rng(seed)
    scores = (np.round(rng.normal(-6, 3, (rows, vocab)) * 4) / 4).astype(np.float32)  # many ties
    scores[rng.random(rows) < 0.5] = -np.inf  # whole rows of padding, as at a search's first step
    n = min(n, scores.size)
    fast, plain = top_candidates(scores, n), ref.top_candidates(scores, n)
    assert fast[0].tolist() == plain[0].tolist() and fast[1].tolist() == plain[1].tolist()


@pytest.mark.parametrize("name", preset_names(Captioner.TASK))
def test_real_photos_get_the_same_captions(name, examples):
    captioner = Captioner.from_preset(name, CaptionerOptions(num_threads=1))
    for photo in sorted(examples.glob("*.jpg")):
        assert ref.photo_differences(captioner, captioner.preprocess(photo)) == [], photo.name
