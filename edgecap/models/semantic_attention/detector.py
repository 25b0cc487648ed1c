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
        self.init_encoder(config or AttributeDetectorConfig(), encoder_weights)  # frozen, or trained from config.fine_tune_from on
        config = self.config
        self.cell_hidden = keras.layers.Dense(config.hidden_dim, activation="relu", name="cell_hidden")  # φ(a_i)
        self.drop = keras.layers.Dropout(config.dropout)
        # b_j starts where the noisy-OR of L cells gives every attribute a prior of PRIOR: with
        # b_j = 0 each cell says 0.5 and P_j ≈ 1 for every word, and the first steps only push
        # all logits down.
        prior_bias = float(np.log(np.expm1(-np.log1p(-PRIOR) / self.spec.num_locations)))
        self.attribute_logits = keras.layers.Dense(config.num_attributes, bias_initializer=keras.initializers.Constant(prior_bias), name="attribute_logits")  # w_j, b_j

    def cell_logits(self, annotations, training: bool = False):
        """Annotation vectors ``(B, L, D)`` → logits ``z_ij`` ``(B, L, A)``."""
        return self.attribute_logits(self.drop(self.cell_hidden(ops.cast(annotations, self.compute_dtype)), training=training))

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


def build(config: AttributeDetectorConfig, vocab_size: int = 0, encoder_weights: str | None = None, train_config=None) -> AttributeDetector:
    """Registry builder: the detector, built (``vocab_size`` is unused: its outputs are attributes, not words)."""
    model = AttributeDetector(config, encoder_weights)
    model.build()
    return model
