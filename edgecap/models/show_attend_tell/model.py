"""The Show, Attend and Tell captioner: encoder + soft-attention decoder step."""

from __future__ import annotations

import keras
from keras import ops

from edgecap.models.backbones import build_encoder, encoder_head_layers, get_backbone
from edgecap.models.show_attend_tell.decoder import SoftAttentionDecoder


class ShowAttendTell(keras.Model):
    """Xu et al. 2015 soft-attention captioner.

    Called on ``{"annotations": float (B, L, D), "captions": int32 (B, T+1)}`` (cached
    features; with ``fine_tune_from`` the cached output grid of the frozen layers, see
    :meth:`annotate`) or ``{"images": uint8 (B, S, S, 3), "captions": ...}`` it unrolls the decoder
    step over the caption with teacher forcing and returns logits ``float32 (B, T, V)`` for
    ``captions[:, 1:]``. While training it adds the doubly stochastic attention penalty
    ``λ Σ_i (1 − Σ_t α_ti)²`` (Xu et al. eq. 14) to ``self.losses``, divided by the number of
    target words in the batch: the cross-entropy is a per-word mean, so this keeps the paper's
    balance between the caption's negative log-likelihood and the penalty.

    Args:
        vocab_size: V.
        backbone: encoder registry name.
        encoder_weights: see :func:`edgecap.models.backbones.build_encoder`.
        embedding_dim, hidden_dim, attention_dim, dropout, context_dropout, projection_dim: see :class:`SoftAttentionDecoder`.
        doubly_stochastic: λ (0 disables the penalty).
        fine_tune_from: name of the first backbone layer trained with the decoder (e.g.
            ``"block_16_expand"``, see :func:`edgecap.models.backbones.encoder_head_layers`);
            ``""`` keeps the whole encoder frozen (the paper).

    Raises:
        ValueError: unknown backbone, or a ``fine_tune_from`` that cannot split it.
    """

    def __init__(self, vocab_size: int, backbone: str = "mobilenet_v2", encoder_weights: str | None = "imagenet", embedding_dim: int = 128, hidden_dim: int = 352, attention_dim: int = 256, dropout: float = 0.5, context_dropout: float = 0.0, doubly_stochastic: float = 1.0, projection_dim: int = 0, fine_tune_from: str = "", **kwargs):
        super().__init__(**kwargs)
        self.spec = get_backbone(backbone)
        self.encoder = build_encoder(backbone, encoder_weights)
        self.encoder.trainable = False
        self.fine_tune_from = fine_tune_from
        if fine_tune_from:
            for layer in encoder_head_layers(self.encoder, fine_tune_from):
                layer.trainable = True  # BatchNorm layers still normalise with their ImageNet statistics (called with training=False)
        self.decoder = SoftAttentionDecoder(vocab_size, embedding_dim, hidden_dim, attention_dim, dropout, context_dropout, projection_dim, name="decoder")
        self.doubly_stochastic = doubly_stochastic

    def build(self, input_shape=None) -> None:
        """Create every variable (call before loading weights)."""
        annotations = ops.zeros((1, self.spec.num_locations, self.spec.dim))
        h, c = self.decoder.initial_state(annotations)
        self.decoder.step(ops.zeros((1,), "int32"), h, c, *self.decoder.prepare(annotations))
        self.decoder.built = self.built = True

    def _head_layers(self) -> list:
        # Looked up on each use, not kept as an attribute: an attribute would save the encoder's
        # layers a second time in checkpoints, under another name.
        return encoder_head_layers(self.encoder, self.fine_tune_from) if self.fine_tune_from else []

    def annotate(self, features):
        """Cached features → annotation vectors ``(B, L, D)``.

        The cache holds the annotation vectors themselves when the encoder is frozen; with
        ``fine_tune_from`` it holds the grid ``(B, g, g, C)`` entering that layer, and the
        trainable layers from there on are applied here.
        """
        x = ops.cast(features, self.compute_dtype)
        if not self.fine_tune_from:
            return x
        for layer in self._head_layers():
            x = layer(x, training=False)
        return ops.reshape(x, (-1, self.spec.num_locations, self.spec.dim))  # (B, L, D)

    def encode(self, images):
        """``uint8 (B, S, S, 3)`` → ``(annotations (B, L, D), h0 (B, H), c0 (B, H))``."""
        annotations = self.encoder(images, training=False)
        h, c = self.decoder.initial_state(annotations)
        return annotations, h, c

    def decode_step(self, tokens, h, c, annotations):
        """Inference step: ``(log_probs (B, V), h, c, alpha (B, L))``; see :meth:`SoftAttentionDecoder.step`."""
        logits, h, c, alpha = self.decoder.step(tokens, h, c, *self.decoder.prepare(annotations), training=False)
        return ops.log_softmax(ops.cast(logits, "float32"), axis=-1), h, c, alpha

    def call(self, inputs, training=False):
        if "annotations" in inputs:
            annotations = self.annotate(inputs["annotations"])
        else:
            annotations = self.encoder(inputs["images"], training=False)
        captions = ops.cast(inputs["captions"], "int32")  # (B, T+1)
        h, c = self.decoder.initial_state(annotations)
        features, keys = self.decoder.prepare(annotations)  # once per caption
        logits, alphas = [], []
        steps = captions.shape[1] - 1
        for t in range(steps):  # teacher forcing: feed the reference word y_{t-1}
            out, h, c, alpha = self.decoder.step(captions[:, t], h, c, features, keys, training=training)
            logits.append(out)
            alphas.append(alpha)
        logits = ops.stack(logits, axis=1)  # (B, T, V)
        if training and self.doubly_stochastic > 0:
            mask = ops.cast(captions[:, 1:] != 0, "float32")  # (B, T)
            coverage = ops.sum(ops.cast(ops.stack(alphas, axis=1), "float32") * mask[..., None], axis=1)  # Σ_t α_ti (B, L)
            penalty = ops.sum((1.0 - coverage) ** 2)  # Σ_b Σ_i (1 − Σ_t α_ti)²
            # Per target word, like the cross-entropy, so λ keeps the paper's per-caption balance.
            self.add_loss(self.doubly_stochastic * penalty / ops.maximum(ops.sum(mask), 1.0))
        return logits
