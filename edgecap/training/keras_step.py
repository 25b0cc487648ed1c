"""The Keras model as a :class:`edgecap.decoding.StepFunction`, for decoding during training/evaluation."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from edgecap.data.vocabulary import Vocabulary
from edgecap.decoding import beam_search, decoding_processors, greedy_search
from edgecap.decoding.search import Hypothesis


class KerasStep:
    """Compiled decoder step over the state ``(h, c, features, keys)``.

    What :meth:`SoftAttentionDecoder.prepare` computes from the annotation vectors is carried
    in the state, so it is computed once per image instead of once per step (the TFLite
    signature recomputes it).
    """

    def __init__(self, model):
        decoder = model.decoder

        @tf.function(reduce_retracing=True)
        def _init(annotations):
            annotations = tf.cast(annotations, tf.float32)
            h, c = decoder.initial_state(annotations)
            return (h, c, *decoder.prepare(annotations))

        @tf.function(reduce_retracing=True)
        def _step(tokens, h, c, features, keys):
            logits, h, c, alpha = decoder.step(tokens, h, c, features, keys, training=False)
            return tf.nn.log_softmax(tf.cast(logits, tf.float32)), h, c, alpha

        self._init, self._step = _init, _step

    def initial_state(self, annotations: np.ndarray) -> tuple:
        """``(B, L, D)`` annotation vectors → state tuple of numpy arrays."""
        return tuple(t.numpy() for t in self._init(annotations))

    def __call__(self, tokens, state):
        h, c, features, keys = state
        log_probs, h, c, alpha = self._step(tokens, h, c, features, keys)
        return log_probs.numpy(), (h.numpy(), c.numpy(), features, keys), alpha.numpy()


def cached_annotations(model, features: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """Annotation vectors ``float32 (N, L, D)`` of cached features (see ``ShowAttendTell.annotate``);
    the features themselves when the whole encoder is frozen."""
    if not model.fine_tune_from:
        return features
    annotate = tf.function(model.annotate, reduce_retracing=True)
    return np.concatenate([annotate(np.asarray(features[i : i + batch_size], np.float32)).numpy() for i in range(0, len(features), batch_size)])


def caption_features(step: KerasStep, features: np.ndarray, vocab: Vocabulary, beam_size: int = 1, length_penalty: float = 0.0, max_length: int = 20, batch_size: int = 200, progress: bool = False, no_repeat_ngram_size: int = 0) -> list[Hypothesis]:
    """Decode a caption for every row of cached annotation vectors ``(N, L, D)``.

    Greedy search runs ``batch_size`` images at once; beam search one image at a time.
    ``no_repeat_ngram_size``: see :class:`edgecap.decoding.NoRepeatNGram`.
    """
    from tqdm.auto import tqdm

    suppress = decoding_processors(vocab.pad_id, vocab.start_id, vocab.end_id, vocab.unk_id, no_repeat_ngram_size)
    out: list[Hypothesis] = []
    chunk = batch_size if beam_size == 1 else 1
    for start in tqdm(range(0, len(features), chunk), disable=not progress, desc=f"decoding (beam {beam_size})", unit="batch" if chunk > 1 else "img"):
        state = step.initial_state(np.asarray(features[start : start + chunk], np.float32))
        if beam_size == 1:
            out += greedy_search(step, state, vocab.start_id, vocab.end_id, max_length, suppress)
        else:
            out += beam_search(step, state, vocab.start_id, vocab.end_id, beam_size, max_length, length_penalty, 1, suppress)
    return out
