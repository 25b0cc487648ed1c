"""``[model]`` section of a multimodal RNN run (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

from edgecap.models.model_config import ModelConfig

CELLS = ("rnn", "lstm")


@dataclass
class MultimodalRNNConfig(ModelConfig):
    """Karpathy & Fei-Fei, "Deep Visual-Semantic Alignments for Generating Image Descriptions"
    (CVPR 2015), §3.2: the image enters the recurrence once, as a bias at the first step.

    Attributes:
        embedding_dim: size of the word vectors x_t.
        hidden_dim: H, the recurrent state size.
        cell: ``"rnn"`` (the paper's ReLU recurrence) or ``"lstm"`` (an option the paper
            mentions as an improvement).
        dropout: rate on the word vectors and on h_t before the output layer while training.
    """

    architecture: str = "multimodal_rnn"
    embedding_dim: int = 256
    hidden_dim: int = 512
    cell: str = "rnn"
    dropout: float = 0.5

    def validate(self) -> list[str]:
        problems = [f"model.{k} must be >= 1, got {getattr(self, k)}" for k in ("embedding_dim", "hidden_dim") if getattr(self, k) < 1]
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.cell not in CELLS:
            problems.append(f"model.cell must be one of {CELLS}, got {self.cell!r}")
        return problems
