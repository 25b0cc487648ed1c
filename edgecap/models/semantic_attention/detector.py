"""The attribute detector of semantic attention: multiple-instance learning with a noisy-OR
over the grid cells (Fang et al., CVPR 2015, §3.1).

Each grid cell i (a "region" of the image) gives every attribute word j a probability
``p_ij = σ(w_jᵀ φ(a_i) + b_j)`` with ``φ`` a ReLU layer; the image holds word j when at least
one cell does (eq. 1 of Fang et al.)::

    P_j = 1 − Π_i (1 − p_ij) = 1 − exp(−Σ_i softplus(z_ij))        (z_ij the logit of p_ij)

Training maximises the likelihood of the weak labels (the words of the image's captions) under
this noisy-OR; the cell with the largest ``p_ij`` locates word j.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from edgecap.models.backbones import FineTunedEncoder
from edgecap.models.semantic_attention.config import AttributeDetectorConfig

PRIOR = 0.05  #: every attribute's probability before training


def noisy_or_evidence(cell_logits):
    """``s_j = Σ_i softplus(z_ij)`` of cell logits ``(B, L, A)`` → ``float32 (B, A)``; ``P_j = 1 − exp(−s_j)``."""
    return ops.sum(ops.softplus(ops.cast(cell_logits, "float32")), axis=1)


def ranking_score(cell_logits):
    """``r_j = log Σ_i exp(z_ij)`` of cell logits ``(B, L, A)`` → ``float32 (B, A)``: what the
    captioner ranks attributes by when it keeps the top k.

    Where the cells' probabilities are small, ``softplus(z) ≈ exp(z)`` and ``r_j ≈ log s_j``,
    so it orders attributes as the noisy-OR does; it is a smooth maximum over the cells, in
    the logits' range. The noisy-OR evidence itself does not survive full-integer int8: most
    of its 49 terms ``softplus(z_ij)`` are far below one int8 step of their tensor and its sum
    has few levels, so the int8 top-k falls on ties (with it, the int8 file of a trained model
    kept 39 % of Keras' top 10 attributes; with ``r_j``, 87 %: ``edgecap export RUN --int8 --full-integer``).
    """
    return ops.logsumexp(ops.cast(cell_logits, "float32"), axis=1)


def head_layers(hidden_dim: int, num_attributes: int, num_locations: int, trainable: bool = True) -> tuple:
    """The detector head, ``(φ, (w_j, b_j))``: a ReLU layer over each cell, then one logit per
    attribute. ``b_j`` starts where the noisy-OR of ``num_locations`` cells gives every attribute
    the probability :data:`PRIOR` (with ``b_j = 0`` each cell says 0.5 and ``P_j ≈ 1`` for
    every word, and the first steps only push all logits down). Shared by
    :class:`AttributeDetector` and the semantic attention captioner, which copies it."""
    prior_bias = float(np.log(np.expm1(-np.log1p(-PRIOR) / num_locations)))
    hidden = keras.layers.Dense(hidden_dim, activation="relu", name="cell_hidden", trainable=trainable)  # φ(a_i)
    logits = keras.layers.Dense(
        num_attributes,
        bias_initializer=keras.initializers.Constant(prior_bias),
        name="attribute_logits",
        trainable=trainable,
    )  # w_j, b_j
    return hidden, logits


def cell_logits(annotations, cell_hidden, attribute_logits, dropout=None, training: bool = False):
    """Annotation vectors ``(B, L, D)`` → logits ``z_ij`` ``(B, L, A)`` through the layers of
    :func:`head_layers` (and ``dropout`` on φ, if given)."""
    hidden = cell_hidden(ops.cast(annotations, cell_hidden.compute_dtype))  # φ(a_i)  (B, L, H)
    if dropout is not None:
        hidden = dropout(hidden, training=training)
    return attribute_logits(hidden)


def noisy_or_loss(evidence, labels):
    """Mean binary cross-entropy of the noisy-OR probabilities ``1 − exp(−s)`` against ``labels`` (0/1,
    ``(B, A)``), computed from the evidence ``s`` without forming ``P``: ``log(1 − P) = −s`` and
    ``log P = log(−expm1(−s))``."""
    s = ops.maximum(evidence, 1e-6)
    y = ops.cast(labels, "float32")
    return ops.mean(-y * ops.log(-ops.expm1(-s)) + (1.0 - y) * s)


class AttributeDetector(FineTunedEncoder, keras.Model):
    """Grid cells → attribute probabilities, with a noisy-OR over the cells.

    Args:
        config: the ``[model]`` section (:class:`AttributeDetectorConfig`).
        encoder_weights: overrides ``config.encoder_weights``.

    Raises:
        ValueError: a bad config value, an unknown backbone, or a ``fine_tune_from`` that cannot
            split it.
    """

    def __init__(self, config: AttributeDetectorConfig | None = None, encoder_weights: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.init_encoder(
            config or AttributeDetectorConfig(), encoder_weights
        )  # frozen, or trained from config.fine_tune_from on
        config = self.config
        self.cell_hidden, self.attribute_logits = head_layers(
            config.hidden_dim, config.num_attributes, self.spec.num_locations
        )
        self.drop = keras.layers.Dropout(config.dropout)

    def cell_logits(self, annotations, training: bool = False):
        """Annotation vectors ``(B, L, D)`` → logits ``z_ij`` ``(B, L, A)``."""
        return cell_logits(annotations, self.cell_hidden, self.attribute_logits, self.drop, training)

    def probabilities(self, annotations):
        """``float32 (B, A)``: the noisy-OR probability of each attribute."""
        return 1.0 - ops.exp(-noisy_or_evidence(self.cell_logits(annotations)))

    def build(self, input_shape=None) -> None:
        """Create every variable (call before loading weights)."""
        self.cell_logits(ops.zeros((1, self.spec.num_locations, self.spec.dim)))
        self.built = True

    def call(self, inputs, training=False):
        """``{"annotations": cached features}`` → noisy-OR evidence ``s`` ``float32 (B, A)``."""
        return noisy_or_evidence(self.cell_logits(self.annotate(inputs["annotations"]), training=training))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = noisy_or_loss(y_pred, y)
        return loss + ops.sum(self.losses) if self.losses else loss


def build(
    config: AttributeDetectorConfig, vocab_size: int = 0, encoder_weights: str | None = None, train_config=None
) -> AttributeDetector:
    """Registry builder: the detector, built (``vocab_size`` is unused: its outputs are attributes, not words)."""
    model = AttributeDetector(config, encoder_weights)
    model.build()
    return model
