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

    def card_title(self) -> str:
        return "multimodal RNN (Karpathy & Fei-Fei)"

    def card_architecture(self) -> str:
        cell = "the paper's ReLU RNN" if self.cell == "rnn" else "an LSTM"
        return (
            f"Karpathy & Fei-Fei 2015 multimodal RNN generator (§3.2, eq. 13): {self.backbone_name()} ({self.encoder_description()}) annotation grid "
            f"average-pooled to one 1280-d image vector, entering the recurrence once, as a bias at the first step; {cell}. "
            f"Embedding {self.embedding_dim}, hidden size {self.hidden_dim}."
        )

    def card_paper(self) -> str:
        return "Paper (Karpathy & Fei-Fei 2015, Flickr8k generation; also in Xu et al. 2015, Table 1): BLEU-1 57.9, BLEU-4 16.0."

    def validate(self) -> list[str]:
        problems = [
            f"model.{k} must be >= 1, got {getattr(self, k)}"
            for k in ("embedding_dim", "hidden_dim")
            if getattr(self, k) < 1
        ]
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.cell not in CELLS:
            problems.append(f"model.cell must be one of {CELLS}, got {self.cell!r}")
        return problems
