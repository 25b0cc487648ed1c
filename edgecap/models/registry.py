"""Model families by name (no TensorFlow).

Adding a captioner is a folder under ``edgecap/models/`` (its config dataclass, Keras model,
step and tests) and one :func:`register` call here; export, the runtime and the trainer work
from the model's step contract. Config classes are imported eagerly (they are plain
dataclasses), models only when built, so reading a config never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass



@dataclass(frozen=True)
class Architecture:
    """One model family.

    Attributes:
        name: registry key, the ``model.architecture`` value.
        config: its ``[model]`` dataclass (a :class:`ModelConfig` subclass).
        builder: ``"module:function"`` of ``f(model_config, vocab_size, encoder_weights, train_config) -> keras.Model``.
        task: ``"captioning"`` (a :class:`~edgecap.models.base.StepwiseCaptioner`, trained by
            :mod:`edgecap.training.trainer`), ``"retrieval"`` (an image–sentence embedding,
            trained by :mod:`edgecap.training.ranking`) or ``"attributes"`` (a visual attribute
            detector, trained by :mod:`edgecap.training.attributes`).
    """

    name: str
    config: type
    builder: str
    task: str = "captioning"

    def build(self, model_config, vocab_size: int, encoder_weights: str | None = None, train_config=None):
        module, _, attr = self.builder.partition(":")
        fn: Callable = getattr(importlib.import_module(module), attr)
        return fn(model_config, vocab_size, encoder_weights, train_config)


_REGISTRY: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    _REGISTRY[arch.name] = arch
    return arch


def get(name: str) -> Architecture:
    """Raises: ValueError naming the known architectures."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model architecture {name!r}; known: {sorted(_REGISTRY)}") from None


# --- the registered families ------------------------------------------------------------------
from edgecap.models.alignment.config import AlignmentConfig  # noqa: E402
from edgecap.models.multimodal_rnn.config import MultimodalRNNConfig  # noqa: E402
from edgecap.models.semantic_attention.config import AttributeDetectorConfig, SemanticAttentionConfig  # noqa: E402
from edgecap.models.show_attend_tell.config import ShowAttendTellConfig  # noqa: E402

register(Architecture("show_attend_tell", ShowAttendTellConfig, "edgecap.models.show_attend_tell.model:build"))  # Xu et al. 2015, soft or hard attention
register(Architecture("multimodal_rnn", MultimodalRNNConfig, "edgecap.models.multimodal_rnn.model:build"))  # Karpathy & Fei-Fei 2015, §3.2
register(Architecture("alignment", AlignmentConfig, "edgecap.models.alignment.model:build", task="retrieval"))  # Karpathy & Fei-Fei 2015, §3.1
register(Architecture("semantic_attention", SemanticAttentionConfig, "edgecap.models.semantic_attention.model:build"))  # You et al. 2016
register(Architecture("attribute_detector", AttributeDetectorConfig, "edgecap.models.semantic_attention.detector:build", task="attributes"))  # Fang et al. 2015, for You et al. 2016
