"""Show, Attend and Tell attention decoder, written as a single step.

Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual Attention",
ICML 2015. Equation numbers refer to the arXiv v3 paper. Training unrolls :meth:`step`
with teacher forcing; export wraps the very same :meth:`step` as the ``decode_step``
signature, so the step that is trained is the step that runs on the device.

What depends only on the image (the projected annotation vectors and the attention keys
``W_a a_i + b``) is computed once by :meth:`start`, the memory of the step contract; a step
does only the work of one word.

Every sum of projections uses one Dense per input (never one Dense over a concatenation),
so that full-integer quantization gives each input its own scale.
"""

from __future__ import annotations

import keras
from keras import ops

#: How a step turns α_t into the context ẑ_t.
CONTEXTS = ("soft", "sample", "argmax")


class SoftAttentionDecoder(keras.layers.Layer):
    """LSTM decoder with attention (Xu et al. 2015, §3.1.2, §4).

    Args:
        vocab_size: V, output words including the 4 special tokens.
        embedding_dim: m, word embedding and deep-output size.
        hidden_dim: n, LSTM memory/hidden size H.
        attention_dim: size of the attention MLP's hidden layer.
        dropout: rate on the deep-output layer while training.
        context_dropout: rate on the context vector ẑ_t while training.
        projection_dim: 0 (as in the paper) or P < D: every use of the annotation vectors
            goes through one shared linear map ``P a_i`` (D → P). All of them are linear in
            ``a_i`` (``W_a a_i``, ``ẑ_t = Σ α a_i`` into the LSTM and deep output, the init
            MLPs' first layer), so this is a rank-P factorisation of those weights: it frees
            parameters for a larger H under the int8 size budget.

    Raises:
        ValueError: a size < 1 or a rate outside [0, 1).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        hidden_dim: int = 352,
        attention_dim: int = 256,
        dropout: float = 0.5,
        context_dropout: float = 0.0,
        projection_dim: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min(vocab_size, embedding_dim, hidden_dim, attention_dim) < 1 or projection_dim < 0:
            raise ValueError(
                "vocab_size, embedding_dim, hidden_dim and attention_dim must be positive, projection_dim >= 0"
            )
        if not (0.0 <= dropout < 1.0 and 0.0 <= context_dropout < 1.0):
            raise ValueError(f"dropout rates must be in [0, 1), got {dropout}, {context_dropout}")
        self.vocab_size, self.embedding_dim, self.hidden_dim, self.attention_dim = (
            vocab_size,
            embedding_dim,
            hidden_dim,
            attention_dim,
        )
        self.dropout_rate, self.context_dropout_rate, self.projection_dim = dropout, context_dropout, projection_dim
        H, m, A = hidden_dim, embedding_dim, attention_dim
        dense = keras.layers.Dense
        self.projection = (
            dense(projection_dim, use_bias=False, name="annotation_projection") if projection_dim else None
        )  # P
        self.embedding = keras.layers.Embedding(vocab_size, m, name="embedding")  # E
        # Initial state: c0 = f_init,c(mean a), h0 = f_init,h(mean a)  (§3.1.2)
        self.init_h = dense(H, activation="tanh", name="init_h")
        self.init_c = dense(H, activation="tanh", name="init_c")
        # Attention MLP f_att(a_i, h_{t-1}) = w^T tanh(W_a a_i + U_a h_{t-1} + b)  (eq. 4)
        self.att_annotations = dense(A, name="att_annotations")  # W_a, b
        self.att_hidden = dense(A, use_bias=False, name="att_hidden")  # U_a
        self.att_score = dense(1, name="att_score")  # w
        # Gating scalar β_t = σ(f_β(h_{t-1}))  (§4.2.1)
        self.gate = dense(1, activation="sigmoid", name="gate_beta")
        # LSTM gates from E y_{t-1}, β ẑ_t and h_{t-1}  (eq. 1), one Dense per input.
        self.lstm_word = dense(4 * H, name="lstm_word")
        self.lstm_context = dense(4 * H, use_bias=False, name="lstm_context")
        self.lstm_hidden = dense(4 * H, use_bias=False, name="lstm_hidden")
        # Deep output p(y_t) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z ẑ_t))  (eq. 7)
        self.out_hidden = dense(m, name="out_hidden")  # L_h
        self.out_context = dense(m, use_bias=False, name="out_context")  # L_z
        self.out_words = dense(vocab_size, name="out_words", dtype="float32")  # L_o
        self.drop = keras.layers.Dropout(dropout)
        self.context_drop = keras.layers.Dropout(context_dropout)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "attention_dim": self.attention_dim,
            "dropout": self.dropout_rate,
            "context_dropout": self.context_dropout_rate,
            "projection_dim": self.projection_dim,
        }

    @property
    def feature_dim(self) -> int | None:
        """F: size of each memory feature vector (P, or D when there is no projection)."""
        return self.projection_dim or None

    def start(self, annotations):
        """What is constant over the steps of one caption, and the initial state.

        Args:
            annotations: ``(B, L, D)`` annotation vectors a_i.

        Returns:
            ``h0, c0 (B, H)`` (f_init of the mean annotation, §3.1.2); ``features (B, L, F)``:
            the annotation vectors, or ``P a_i`` (F = projection_dim); ``keys (B, L, A)``:
            ``W_a features_i + b`` of the attention MLP (eq. 4).
        """
        features = annotations if self.projection is None else self.projection(annotations)
        mean = ops.mean(features, axis=1)  # (B, F); P mean(a) = mean(P a)
        return self.init_h(mean), self.init_c(mean), features, self.att_annotations(features)

    def attend(self, h, keys):
        """α_t = softmax_i(w^T tanh(W_a a_i + b + U_a h_{t-1}))  (eqs. 4-5): ``(B, L)``; keys may have 1 row."""
        scores = self.att_score(ops.tanh(keys + self.att_hidden(h)[:, None, :]))  # (B, L, 1)
        return ops.softmax(scores[..., 0], axis=-1)

    def step(self, tokens, h, c, features, keys, weights=None, training=False):
        """One decoding step.

        Args:
            tokens: ``int32 (B,)`` previous words y_{t-1}.
            h, c: ``float32 (B, H)`` LSTM hidden state and memory.
            features, keys: from :meth:`start`, with B or 1 rows (1: shared by B beams).
            weights: optional ``(alpha (B, L)) -> (B, L)``: the location weights that make the
                context (default α itself: soft attention, eq. 13). Hard attention passes a
                sampled or arg-max one-hot location (eq. 8-9).
            training: enables dropout.

        Returns:
            ``(logits (B, V), h (B, H), c (B, H), alpha (B, L), used (B, L))``; logits are
            unnormalised log-probabilities of y_t, ``used`` the weights the context was made with.
        """
        emb = self.embedding(tokens)  # (B, m)
        alpha = self.attend(h, keys)  # (B, L)
        used = alpha if weights is None else weights(alpha)
        context = ops.sum(used[..., None] * features, axis=1)  # ẑ_t (B, F), eq. 6
        context = self.context_drop(context, training=training)
        gated = self.gate(h) * context  # β_t ẑ_t (B, F)
        # LSTM (eq. 1), gate order i, f, o, g.
        z = self.lstm_word(emb) + self.lstm_context(gated) + self.lstm_hidden(h)  # (B, 4H)
        i, f, o, g = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        # Deep output layer (eq. 7), tanh as in the authors' code.
        deep = ops.tanh(emb + self.out_hidden(h) + self.out_context(context))  # (B, m)
        logits = self.out_words(self.drop(deep, training=training))  # (B, V)
        return logits, h, c, alpha, used
