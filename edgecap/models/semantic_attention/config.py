"""``[model]`` sections of semantic attention (You et al., CVPR 2016): the attribute detector and the captioner (no TensorFlow)."""

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
        problems = [
            f"model.{k} must be >= 1, got {getattr(self, k)}"
            for k in ("num_attributes", "hidden_dim")
            if getattr(self, k) < 1
        ]
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"model.dropout must be in [0, 1), got {self.dropout}")
        return problems


@dataclass
class SemanticAttentionConfig(ModelConfig):
    """The semantic attention captioner (You et al., "Image Captioning with Semantic
    Attention", CVPR 2016, §3): the image enters the LSTM once (eq. 1); at each step the input
    attention φ (eq. 4–5) and the output attention ψ (eq. 6–7) weigh the top-k attributes
    that a trained detector finds in the photo.

    Attributes:
        detector: the attribute detector's run directory (``edgecap train`` with an
            ``attribute_detector`` config). A new run copies its weights (kept frozen) and
            attribute words; later the checkpoint holds them, and the directory is not read.
        num_attributes: A of that detector (checked when the run starts).
        detector_hidden_dim: its ``hidden_dim`` (checked when the run starts).
        top_k: how many of the detected attributes the decoder attends over (the paper: 10).
        hidden_dim: d, the size of the word embeddings E *and* of the LSTM: eq. 7 adds the
            embedded attributes σ(E y^i) to h_t, so the two are one size, as in the paper.
        input_attention: use φ (eq. 5); False feeds the word alone (an ablation).
        output_attention: use ψ (eq. 7); False predicts from h_t alone (an ablation).
        image_every_step: also add ``W^{x,v}' v`` to every x_t, not only feed v at t = 0 — a
            departure from eq. 1 (the paper, like Vinyals et al. 2015, feeds the image once);
            off by default.
        visual_attention: also attend over the annotation grid at every step, Xu et al.'s
            soft attention (2015, eq. 4–6, with its gate β_t of §4.2.1) over ``P a_i``, the
            context added to x_t and to the output layer's input — not in You et al. (whose
            image enters once, eq. 1); off by default.
        projection_dim: P, the annotation vectors' projection when ``visual_attention``.
        attention_dim: the hidden size of the visual attention MLP (Xu et al. eq. 4).
        dropout: rate on x_t and on the output layer's input while training.
        attention_regularization: λ of the attention regulariser ``g(α) + g(β)`` (§3.4),
            added per target word like the cross-entropy; 0 turns it off.
        norm_p, norm_q: p > 1 and 0 < q < 1 of ``g(α) = ‖Σ_t α_t‖_p + Σ_t ‖α_t‖_q``.
    """

    architecture: str = "semantic_attention"
    encoder_weights: str = "export"
    detector: str = ""
    num_attributes: int = 256
    detector_hidden_dim: int = 512
    top_k: int = 10
    hidden_dim: int = 512
    input_attention: bool = True
    output_attention: bool = True
    image_every_step: bool = False
    visual_attention: bool = False
    projection_dim: int = 256
    attention_dim: int = 256
    dropout: float = 0.5
    attention_regularization: float = 0.01
    norm_p: float = 2.0
    norm_q: float = 0.5

    def card_title(self) -> str:
        return "semantic attention (You et al.)"

    def card_architecture(self) -> str:
        parts = [
            name
            for flag, name in (
                (self.input_attention, "input attention φ (eq. 4–5)"),
                (self.output_attention, "output attention ψ (eq. 6–7, E tied)"),
            )
            if flag
        ]
        extra = ""
        if self.visual_attention:
            extra += (
                f" Beside them, not in the paper: Xu et al.'s soft attention over the 7×7 grid (annotation vectors projected 1280 → {self.projection_dim}, "
                f"attention MLP {self.attention_dim}), its context added to each LSTM input and to the output layer's input."
            )
        if self.image_every_step:
            extra += " Not in the paper: the image vector also added to every LSTM input."
        regulariser = (
            f"attention regulariser λ {self.attention_regularization} (§3.4, p {self.norm_p}, q {self.norm_q})"
            if self.attention_regularization
            else "no attention regulariser (λ = 0, not the paper's: its §3.4 term made both attentions one-hot here)"
        )
        return (
            f"You et al. 2016 semantic attention (§3): {self.backbone_name()} ({self.encoder_description()}) annotation grid; the global image vector enters the LSTM once (eq. 1); "
            f"{' and '.join(parts) or 'no attention'} over the top {self.top_k} of {self.num_attributes} attributes found by a noisy-OR "
            f"multiple-instance detector (Fang et al. 2015) over the grid cells, frozen, its top-k selection inside `encode`; "
            f"embedding and LSTM {self.hidden_dim}; {regulariser}." + extra
        )

    def card_paper(self) -> str:
        return (
            "Paper (You et al. 2016): no Flickr8k figures; on Flickr30k BLEU-4 23.0, METEOR 18.9. "
            "The built-in soft-attention model `show_attend_tell_flickr8k` (its card) is the comparison on Flickr8k."
        )

    def card_baseline(self) -> str:
        return "show_attend_tell_flickr8k"

    def card_notes(self) -> list[str]:
        if not (self.visual_attention and self.attention_regularization == 0):
            return []
        return [
            "- Measured in `docs/experiments/semantic_attention.md` (Keras, Flickr8k test, beam 3, length penalty 0.75, no repeated trigram): "
            "the same config at seeds 1234 and 7 scored BLEU-4 20.31 and 19.98, CIDEr-D 48.43 and 48.70; dev beam 3 CIDEr-D 48.38 and 47.05. "
            "Seed noise on dev is larger than the spread of the attention settings (0.6), so dev cannot rank them.",
            "- Ablations there (one seed each, grid attention beside, λ 0.01): no attributes 20.08 / 47.56, input attention only 20.25 / 48.23, "
            "output attention only 19.25 / 47.73, both 20.02 / 48.31 (test BLEU-4 / CIDEr-D): beside the grid attention the attributes add under one point.",
            "- The paper's: the attribute vocabulary and detector (Fang et al.'s noisy-OR MIL), the image at t = 0 only (eq. 1), "
            "input and output attention (eq. 4–7) with the output layer tied to E. Not the paper's: the soft attention over the grid beside them, "
            "no regulariser (λ = 0), the top-k attributes ranked by the log-sum-exp of their cell logits (so that the int8 top-k survives), "
            "and the encoder (the built-in captioner's MobileNetV2, frozen).",
        ]

    def validate(self) -> list[str]:
        problems = [
            f"model.{k} must be >= 1, got {getattr(self, k)}"
            for k in ("num_attributes", "detector_hidden_dim", "top_k", "hidden_dim", "projection_dim", "attention_dim")
            if getattr(self, k) < 1
        ]
        if self.top_k > self.num_attributes:
            problems.append(
                f"model.top_k ({self.top_k}) is larger than the detector's {self.num_attributes} attributes"
            )
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.attention_regularization < 0:
            problems.append(f"model.attention_regularization must be >= 0, got {self.attention_regularization}")
        if not (self.norm_p > 1.0 and 0.0 < self.norm_q < 1.0):
            problems.append(
                f"model.norm_p must be > 1 and model.norm_q in (0, 1) (You et al. §3.4), got {self.norm_p}, {self.norm_q}"
            )
        if self.fine_tune_from:
            problems.append(
                "model.fine_tune_from must stay empty: the attribute detector was trained on the frozen encoder's features"
            )
        return problems
