"""``[model]`` section of a Show, Attend and Tell run (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

from edgecap.models.model_config import ModelConfig

ATTENTIONS = ("soft", "hard")
HARD_DECODINGS = ("expected", "argmax")


@dataclass
class ShowAttendTellConfig(ModelConfig):
    """Xu et al. 2015 (ICML), soft (§4.2) or hard (§4.1) attention.

    Attributes:
        embedding_dim: m, word embedding and deep-output size.
        hidden_dim: n, LSTM size H.
        attention_dim: the attention MLP's hidden size.
        dropout: rate on the deep-output layer while training.
        context_dropout: rate on the context vector ẑ_t while training.
        doubly_stochastic: λ of the doubly stochastic attention penalty (eq. 14, soft
            attention), per target word like the cross-entropy; 0 turns it off.
        projection_dim: 0 = annotation vectors as they are (the paper); P = one shared linear
            map D → P first (see ``SoftAttentionDecoder``).
        attention: ``"soft"`` (deterministic, eq. 13-14) or ``"hard"`` (stochastic, eq. 8-12).
        hard_decoding: hard attention at inference: ``"expected"`` context (what the authors'
            sampler does) or the ``"argmax"`` location.
        reward_weight: λ_r of the REINFORCE term (eq. 12), hard attention only.
        entropy_weight: λ_e of the entropy bonus (eq. 12), hard attention only.
        baseline_decay: decay of the moving-average baseline (§4.1: 0.9).
        expected_context_prob: probability that an image's sampled locations are replaced by
            the expected context during training (§4.1: 0.5); drawn per image, as the paper says.
        tag_slots: K > 0: the photo's tags (a tagger's words, up to K, with their scores) are an
            input: soft attention weighs them beside the image locations (see
            ``SoftAttentionDecoder``); 0 = the photo alone (the paper).
        tagger: the built-in tagger whose words fill the tag slots (``edgecap models``).
        tag_min_score: tags scored below this are left out of the slots.
    """

    architecture: str = "show_attend_tell"
    embedding_dim: int = 128
    hidden_dim: int = 352
    attention_dim: int = 256
    dropout: float = 0.5
    context_dropout: float = 0.5
    doubly_stochastic: float = 1.0
    projection_dim: int = 0
    attention: str = "soft"
    hard_decoding: str = "expected"
    reward_weight: float = 0.1
    entropy_weight: float = 0.002
    baseline_decay: float = 0.9
    expected_context_prob: float = 0.5
    tag_slots: int = 0
    tagger: str = "coco_detector"
    tag_min_score: float = 0.3

    def model_name(self) -> str:
        return "show_attend_tell_hard" if self.attention == "hard" else "show_attend_tell"

    def card_title(self) -> str:
        return f"Show, Attend and Tell ({self.attention} attention)"

    def card_architecture(self) -> str:
        hard = ""
        if self.attention == "hard":
            decoding = "expected context" if self.hard_decoding == "expected" else "arg-max location"
            hard = (
                f" (REINFORCE with a moving-average baseline, λ_r {self.reward_weight}, entropy bonus λ_e {self.entropy_weight}, expected context for an image with probability "
                f"{self.expected_context_prob}; decoded with the {decoding})"
            )
        sizes = f" Embedding {self.embedding_dim}, LSTM {self.hidden_dim}, attention MLP {self.attention_dim}"
        if self.tag_slots:
            sizes += (
                f"; the photo's tags (up to {self.tag_slots} words of `{self.tagger}` scored at least {self.tag_min_score}) "
                "are attended beside the 49 image locations: their word embeddings, projected into the annotation space, "
                "with the log of the tag's score as the attention prior"
            )
        if self.projection_dim:
            sizes += f", annotation vectors projected 1280 → {self.projection_dim} by one shared linear map"
        return (
            f"Xu et al. 2015 {self.attention} attention{hard}; {self.backbone_name()} ({self.encoder_description()}) annotation grid 7×7×1280; "
            f"LSTM decoder, deep output layer, doubly stochastic attention penalty.{sizes}."
        )

    def card_training(self) -> str:
        reinforce = (
            " plus the REINFORCE terms of Xu et al. eq. 12 for the sampled locations"
            if self.attention == "hard"
            else ""
        )
        return super().card_training() + reinforce

    def card_paper(self) -> str:
        return "Paper (Xu et al. 2015, Table 1, Flickr8k): soft attention BLEU-4 19.5, METEOR 18.93; hard attention BLEU-4 21.3, METEOR 20.30."

    def validate(self) -> list[str]:
        problems = []
        for key in ("embedding_dim", "hidden_dim", "attention_dim"):
            if getattr(self, key) < 1:
                problems.append(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.projection_dim < 0:
            problems.append(f"model.projection_dim must be >= 0, got {self.projection_dim}")
        for key in ("dropout", "context_dropout", "baseline_decay"):
            if not 0.0 <= getattr(self, key) < 1.0:
                problems.append(f"model.{key} must be in [0, 1), got {getattr(self, key)}")
        if not 0.0 <= self.expected_context_prob <= 1.0:
            problems.append(f"model.expected_context_prob must be in [0, 1], got {self.expected_context_prob}")
        if self.reward_weight < 0 or self.entropy_weight < 0:
            problems.append("model.reward_weight and model.entropy_weight must be >= 0")
        if self.doubly_stochastic < 0:
            problems.append(f"model.doubly_stochastic must be >= 0, got {self.doubly_stochastic}")
        if self.attention not in ATTENTIONS:
            problems.append(f"model.attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.tag_slots < 0 or self.tag_slots > 64:
            problems.append(f"model.tag_slots must be in 0..64, got {self.tag_slots}")
        if self.tag_slots and self.attention != "soft":
            problems.append("model.tag_slots needs model.attention = 'soft'")
        if not 0.0 <= self.tag_min_score <= 1.0:
            problems.append(f"model.tag_min_score must be in [0, 1], got {self.tag_min_score}")
        if self.hard_decoding not in HARD_DECODINGS:
            problems.append(f"model.hard_decoding must be one of {HARD_DECODINGS}, got {self.hard_decoding!r}")
        return problems
