"""The Keras model as a :class:`edgecap.decoding.StepFunction`, for decoding during training/evaluation."""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from edgecap.decoding import beam_search, decoding_processors, greedy_search
from edgecap.decoding.search import Hypothesis
from edgecap.runtime.vocabulary import Vocabulary


class KerasStep:
    """Any :class:`edgecap.models.base.StepwiseCaptioner` as a compiled step function.

    ``state, step = KerasStep(model).start(annotations)`` computes the state and memory of a
    batch of images once; ``step`` (a :class:`edgecap.decoding.StepFunction`) has the memory
    bound, so the search reorders only the state. Memory with B rows serves a batch decoded
    greedily; beam search of one image repeats the state, and the memory's single row is
    shared by the beams.
    """

    def __init__(self, model):
        self.model = model
        self.contract = model.step_contract()

        @tf.function(reduce_retracing=True)
        def _start(annotations):
            return model.start(tf.cast(annotations, tf.float32))

        @tf.function(reduce_retracing=True)
        def _step(tokens, state, memory):
            log_probs, state, attention = model.decode_step(tokens, state, memory)
            return log_probs, state, attention

        self._start, self._step = _start, _step

    def start(self, annotations: np.ndarray, tags: dict | None = None) -> tuple[tuple, "BoundKerasStep"]:
        """``(B, L, D)`` annotation vectors → ``(state tuple of numpy arrays, step function)``;
        ``tags``: a tag-conditioned model's tag tensors by name, ``(B, K)`` each (default: none)."""
        return self.bind({**self._start(annotations), **(tags or {})})

    def bind(self, tensors: dict) -> tuple[tuple, "BoundKerasStep"]:
        """What ``model.start``/``model.encode`` returned (with tag tensors, if any) → ``(state
        tuple, step function)``."""
        state, memory = self.model.split(tensors)
        return tuple(np.asarray(state[n]) for n in self.contract.state_names), BoundKerasStep(self, memory)


class BoundKerasStep:
    """One batch's step function: the memory is fixed, the state flows through the search."""

    def __init__(self, step: KerasStep, memory: dict):
        self._step, self._names, self.memory = step._step, step.contract.state_names, memory

    def __call__(self, tokens, state):
        log_probs, new_state, attention = self._step(
            tf.constant(tokens, tf.int32), dict(zip(self._names, state)), self.memory
        )
        return (
            log_probs.numpy(),
            tuple(new_state[n].numpy() for n in self._names),
            None if attention is None else attention.numpy(),
        )


_GRAPH_FUNCTIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def graph_function(model, method: str):
    """``model.<method>`` as a ``tf.function``, traced once per model and kept while it lives."""
    functions = _GRAPH_FUNCTIONS.setdefault(model, {})
    if method not in functions:
        functions[method] = tf.function(getattr(model, method), reduce_retracing=True)
    return functions[method]


def batched(model, method: str, inputs: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """``model.<method>`` over ``inputs`` (a memory map is fine) ``batch_size`` rows at a time, as float32 NumPy."""
    fn = graph_function(model, method)
    return np.concatenate(
        [fn(np.asarray(inputs[i : i + batch_size], np.float32)).numpy() for i in range(0, len(inputs), batch_size)]
    )


def cached_annotations(model, features: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """Annotation vectors ``float32 (N, L, D)`` of cached features (see ``FineTunedEncoder.annotate``);
    the features themselves when the whole encoder is frozen."""
    return batched(model, "annotate", features, batch_size) if model.fine_tune_from else features


def caption_features(
    step: KerasStep,
    features: np.ndarray,
    vocab: Vocabulary,
    beam_size: int = 1,
    length_penalty: float = 0.0,
    max_length: int = 20,
    batch_size: int = 200,
    progress: bool = False,
    no_repeat_ngram_size: int = 0,
    tags: dict[str, np.ndarray] | None = None,
) -> list[Hypothesis]:
    """Decode a caption for every row of annotation vectors ``(N, L, D)`` (``step``: a :class:`KerasStep`).

    Greedy search runs ``batch_size`` images at once; beam search one image at a time.
    ``no_repeat_ngram_size``: see :class:`edgecap.decoding.NoRepeatNGram`. ``tags``: a
    tag-conditioned model's tag tensors by name, ``(N, K)`` each (default: no tags).
    """
    from tqdm.auto import tqdm

    suppress = decoding_processors(vocab.pad_id, vocab.start_id, vocab.end_id, vocab.unk_id, no_repeat_ngram_size)
    out: list[Hypothesis] = []
    chunk = batch_size if beam_size == 1 else 1
    for start in tqdm(
        range(0, len(features), chunk),
        disable=not progress,
        desc=f"decoding (beam {beam_size})",
        unit="batch" if chunk > 1 else "img",
    ):
        rows = {n: v[start : start + chunk] for n, v in (tags or {}).items()}
        state, bound = step.start(np.asarray(features[start : start + chunk], np.float32), rows)
        if beam_size == 1:
            out += greedy_search(bound, state, vocab.start_id, vocab.end_id, max_length, suppress)
        else:
            out += beam_search(
                bound, state, vocab.start_id, vocab.end_id, beam_size, max_length, length_penalty, 1, suppress
            )
    return out
