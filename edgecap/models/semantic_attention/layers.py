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
        self.embeddings = self.add_weight(
            shape=(self.vocab_size, self.dim), initializer="uniform", name="embeddings"
        )  # E  (V, d)
        self.output_bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="output_bias")  # b  (V,)

    def call(self, inputs, reverse: bool = False):
        if not reverse:
            return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)  # (..., d)
        z = ops.cast(inputs, "float32")  # (..., d)
        return ops.matmul(z, ops.transpose(ops.cast(self.embeddings, "float32"))) + ops.cast(
            self.output_bias, "float32"
        )  # (..., V)

    def compute_output_shape(self, input_shape, reverse: bool = False):
        return (*input_shape[:-1], self.vocab_size) if reverse else (*input_shape, self.dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim}


class VisualAttention(keras.layers.Layer):
    """Soft attention over the annotation grid (Xu et al., ICML 2015, eq. 4–6 and the gate β_t
    of §4.2.1), over a shared projection ``P a_i`` of the annotation vectors.

    Not part of You et al.'s captioner (its image enters the LSTM once, eq. 1): the option
    ``model.visual_attention`` adds it beside the semantic attention.

    Args:
        projection_dim: P, the size of ``P a_i``.
        attention_dim: the hidden size of the attention MLP ``f_att``.

    ``memory(annotations (B, L, D))`` → ``features (B, L, P)`` and ``keys (B, L, A)`` (the
    per-image part, ``W_a P a_i + b``); ``call(h (B, n), features, keys)`` → ``(context (B, P),
    alpha (B, L))``: ``α_t = softmax_i(w^T tanh(W_a P a_i + b + U_a h_{t-1}))`` (eq. 4–5) and the
    gated context ``σ(f_β(h_{t-1})) Σ_i α_ti P a_i`` (eq. 6, §4.2.1). Memory may have 1 row.
    """

    def __init__(self, projection_dim: int, attention_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.projection_dim, self.attention_dim = projection_dim, attention_dim
        dense = keras.layers.Dense
        self.projection = dense(projection_dim, use_bias=False, name="annotation_projection")  # P
        self.key = dense(attention_dim, name="att_annotations")  # W_a, b
        self.query = dense(attention_dim, use_bias=False, name="att_hidden")  # U_a
        self.score = dense(1, name="att_score")  # w
        self.gate = dense(1, activation="sigmoid", name="gate_beta")  # f_β

    def memory(self, annotations):
        features = self.projection(annotations)  # P a_i  (B, L, P)
        return features, self.key(features)  # (B, L, P), (B, L, A)

    def call(self, h, features, keys):
        scores = self.score(ops.tanh(keys + self.query(h)[:, None, :]))[..., 0]  # (B, L)
        alpha = ops.softmax(scores, axis=-1)
        context = ops.sum(alpha[..., None] * features, axis=1)  # ẑ_t  (B, P)
        return self.gate(h) * context, alpha

    def get_config(self) -> dict:
        return {**super().get_config(), "projection_dim": self.projection_dim, "attention_dim": self.attention_dim}
