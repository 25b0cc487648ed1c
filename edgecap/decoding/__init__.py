"""Caption search over a step function: greedy and beam search (numpy only, no TensorFlow).

The same code decodes with the Keras step during training/evaluation and with the TFLite
``decode_step`` signature on the device: anything that follows :class:`StepFunction` works.
"""

from edgecap.decoding.processors import (
    LogitsProcessor,
    LogitsProcessorList,
    MinLength,
    NoRepeatNGram,
    SuppressTokens,
    decoding_processors,
)
from edgecap.decoding.search import Hypothesis, StepFunction, beam_search, greedy_search, top_candidates

__all__ = [
    "Hypothesis",
    "LogitsProcessor",
    "LogitsProcessorList",
    "MinLength",
    "NoRepeatNGram",
    "StepFunction",
    "SuppressTokens",
    "beam_search",
    "decoding_processors",
    "greedy_search",
    "top_candidates",
]
