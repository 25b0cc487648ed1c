"""``[model]`` section of an image–sentence alignment run (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

from edgecap.models.model_config import ModelConfig

LOSSES = ("sum", "hardest")


@dataclass
class AlignmentConfig(ModelConfig):
    """Karpathy & Fei-Fei, "Deep Visual-Semantic Alignments for Generating Image Descriptions"
    (CVPR 2015), §3.1: regions and words in one h-dimensional multimodal space.

    Attributes:
        embedding_dim: size of the word vectors ``W_w I_t`` (the paper: 300-d word2vec).
        hidden_dim: h, the multimodal space (the paper: 1000–1600).
        max_words: words per sentence the BRNN reads (longer sentences are cut; the exported
            ``embed_sentence`` signature takes exactly this many token ids).
        loss: ``"sum"``, the max-margin loss of eq. 9 summed over every negative, or
            ``"hardest"``, the hardest negative of each row and column (VSE++, Faghri et al.
            2018), after ``warmup_epochs`` of the summed form.
        margin: the margin of eq. 9 (1 in the paper).
        warmup_epochs: epochs of the summed loss before ``loss = "hardest"`` takes over.
        normalize: scale every region and word vector to unit length, so that eq. 8 sums
            cosines (as VSE, Kiros et al. 2014, and VSE++ do; pair it with a margin near 0.2).
            Without it the loss can be met by growing the vectors rather than by ranking
            better: on Flickr8k the summed loss falls to ~5 while held-out R@K stalls.
        dropout: rate on the word vectors and the region vectors while training.
        word_vectors: optional text file of pretrained word vectors (word2vec/GloVe text
            format, ``word v1 .. v_embedding_dim`` a line) that initialises ``W_w``; empty:
            learned from scratch.
    """

    architecture: str = "alignment"
    embedding_dim: int = 300
    hidden_dim: int = 512
    max_words: int = 24
    loss: str = "sum"
    margin: float = 1.0
    warmup_epochs: int = 1
    normalize: bool = False
    dropout: float = 0.0
    word_vectors: str = ""

    def model_name(self) -> str:
        return "visual_semantic_alignment"

    def card_title(self) -> str:
        return "image–sentence alignment (Karpathy & Fei-Fei)"

    def card_architecture(self) -> str:
        return (
            f"Karpathy & Fei-Fei 2015, §3.1. Regions: {self.backbone_name()}'s 7×7 grid cells ({self.encoder_description()}) plus the whole image (their mean), "
            f"each mapped to the {self.hidden_dim}-d multimodal space by one linear map (grid cells stand in for the paper's 19 RCNN detections). "
            f"Words: {self.embedding_dim}-d learned word vectors, a bidirectional ReLU RNN (§3.1.2), up to {self.max_words} words. Score: eq. 8, Σ_t max_i v_iᵀ s_t."
        )

    def card_training(self) -> str:
        loss = "summed over negatives" if self.loss == "sum" else "hardest negative (VSE++) after a summed warm-up"
        normalize = (
            "; region and word vectors scaled to unit length before eq. 8 (cosines, as in VSE)"
            if self.normalize
            else ""
        )
        dropout = f"; dropout {self.dropout} on the word and region vectors" if self.dropout else ""
        return f"the max-margin loss of eq. 9 in both directions ({loss}, margin {self.margin}){normalize}{dropout}"

    def validate(self) -> list[str]:
        problems = [
            f"model.{k} must be >= 1, got {getattr(self, k)}"
            for k in ("embedding_dim", "hidden_dim", "max_words")
            if getattr(self, k) < 1
        ]
        if self.loss not in LOSSES:
            problems.append(f"model.loss must be one of {LOSSES}, got {self.loss!r}")
        if not self.margin > 0:
            problems.append(f"model.margin must be > 0, got {self.margin}")
        if self.warmup_epochs < 0:
            problems.append(f"model.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"model.dropout must be in [0, 1), got {self.dropout}")
        return problems
