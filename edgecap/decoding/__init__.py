"""Caption search over a step function: greedy, beam and constrained beam search (numpy only, no TensorFlow).

The same code decodes with the Keras step during training/evaluation and with the TFLite
``decode_step`` signature on the device: anything that follows :class:`StepFunction` works.
"""

from edgecap.decoding.constraints import ConstraintFSM, constrained_beam_search
from edgecap.decoding.processors import (
    LogitsProcessor,
    LogitsProcessorList,
    MinLength,
    NoRepeatNGram,
    PenalizeTokens,
    SuppressTokens,
    decoding_processors,
)
from edgecap.decoding.search import Hypothesis, StepFunction, beam_search, greedy_search, top_candidates

__all__ = [
    "ConstraintFSM",
    "constrained_beam_search",
    "Hypothesis",
    "LogitsProcessor",
    "LogitsProcessorList",
    "MinLength",
    "NoRepeatNGram",
    "PenalizeTokens",
    "StepFunction",
    "SuppressTokens",
    "beam_search",
    "decoding_processors",
    "greedy_search",
    "top_candidates",
]
