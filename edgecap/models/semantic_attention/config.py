"""``[model]`` sections of semantic attention (You et al., CVPR 2016) (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

from edgecap.models.model_config import ModelConfig


@dataclass
class AttributeDetectorConfig(ModelConfig):
    """The visual attribute detector: multiple-instance learning with a noisy-OR over the
    encoder's grid cells (Fang et al., "From captions to visual concepts and back", CVPR 2015,
    §3.1), one of the detectors You et al. (§4.1) compare.

    Attributes:
        num_attributes: A, the most frequent content words of the training captions
            (:class:`~edgecap.models.semantic_attention.attributes.AttributeVocabulary`).
        hidden_dim: width of the ReLU layer applied to each grid cell before the per-word
            logits (Fang et al. apply the fully convolutional fc6/fc7 of VGG here).
        dropout: rate on each cell's hidden vector while training.
    """

    architecture: str = "attribute_detector"
    num_attributes: int = 256
    hidden_dim: int = 512
    dropout: float = 0.3

    def validate(self) -> list[str]:
        problems = [f"model.{k} must be >= 1, got {getattr(self, k)}" for k in ("num_attributes", "hidden_dim") if getattr(self, k) < 1]
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"model.dropout must be in [0, 1), got {self.dropout}")
        return problems
