"""Small layers of the semantic attention captioner (You et al., CVPR 2016, §3)."""

from __future__ import annotations

import keras
from keras import ops


class DiagonalScale(keras.layers.Layer):
    """``diag(w) x``: a learned weight per feature, ones at the start.

    The attribute mixes ``w^{x,A}`` of eq. 5 and ``w^{Y,A}`` of eq. 7 (You et al. 2016).

    Call args:
        x: ``(..., d)`` in the layer's compute dtype.

    Returns:
        ``(..., d)``, ``x`` scaled feature by feature.
    """

    def build(self, input_shape) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")  # w  (d,)

    def call(self, x):
        return x * self.scale


class TiedEmbedding(keras.layers.Layer):
    """The word embedding ``E`` that is also the output layer (eq. 7: ``p_t ∝ exp(E z_t + b)``).

    ``call(ids)`` embeds; ``call(z, reverse=True)`` gives the logits ``z Eᵀ + b`` in float32
    (the bias ``b`` is this layer's): one matrix in both roles (keras-hub's
    ``ReversibleEmbedding`` pattern, with an output bias).

    Args:
        vocab_size: V.
        dim: d.

    Call args:
        inputs: int ids ``(...)``, or with ``reverse=True`` vectors ``float (..., d)``.
        reverse: embed (False) or score against every word (True).

    Returns:
        ``(..., d)`` embeddings, or ``float32 (..., V)`` logits.
    """

    def __init__(self, vocab_size: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.dim = vocab_size, dim

    def build(self, input_shape=None) -> None:
        self.embeddings = self.add_weight(shape=(self.vocab_size, self.dim), initializer="uniform", name="embeddings")  # E  (V, d)
        self.output_bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="output_bias")  # b  (V,)

    def call(self, inputs, reverse: bool = False):
        if not reverse:
            return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)  # (..., d)
        z = ops.cast(inputs, "float32")  # (..., d)
        return ops.matmul(z, ops.transpose(ops.cast(self.embeddings, "float32"))) + ops.cast(self.output_bias, "float32")  # (..., V)

    def compute_output_shape(self, input_shape, reverse: bool = False):
        return (*input_shape[:-1], self.vocab_size) if reverse else (*input_shape, self.dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim}
