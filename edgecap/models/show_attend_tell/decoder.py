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
        tag_feature_dim: F > 0: :meth:`step` may take tags (word ids and scores), each made a
            memory row ``T E y_k`` (the word's embedding through a linear map m → F) with key
            ``W_a T E y_k + b``, attended beside the image locations in one softmax whose prior
            is the log of the tag's score (You et al. 2016's input attention over detected
            words, here in the same attention as the image; a tag of score 0 gets no weight).

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
        tag_feature_dim: int = 0,
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
        self.tag_feature_dim = tag_feature_dim
        self.tag_projection = dense(tag_feature_dim, use_bias=False, name="tag_projection") if tag_feature_dim else None
        # b_tag: added to every tag's attention score; starts at -2 so that a model continued
        # from one without tags starts out looking at the image as before
        self.tag_bias = (
            self.add_weight(shape=(), initializer=keras.initializers.Constant(-2.0), name="tag_bias")
            if tag_feature_dim
            else None
        )

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
            "tag_feature_dim": self.tag_feature_dim,
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

    def attend(self, h, keys, prior=None):
        """α_t = softmax_i(w^T tanh(W_a a_i + b + U_a h_{t-1}) + prior_i)  (eqs. 4-5): ``(B, L)``;
        keys may have 1 row; ``prior`` ``(B or 1, L)`` is added to the scores (log prior weights)."""
        scores = self.att_score(ops.tanh(keys + self.att_hidden(h)[:, None, :]))[..., 0]  # (B, L)
        return ops.softmax(scores if prior is None else scores + prior, axis=-1)

    def tag_memory(self, tag_embeddings, tag_scores):
        """Tags as memory rows: their word embeddings ``(B, K, m)`` and ``float (B, K)`` scores →
        ``features (B, K, F)`` (``T E y_k``), ``keys (B, K, A)`` and the log prior ``(B, K)``
        (``log(score + 1e-4) + b_tag``: about -9.2 + b_tag for an empty slot)."""
        features = self.tag_projection(tag_embeddings)  # (B, K, F)
        prior = ops.log(ops.cast(tag_scores, features.dtype) + 1e-4) + ops.cast(self.tag_bias, features.dtype)  # (B, K)
        return features, self.att_annotations(features), prior

    def embed(self, tokens, tag_ids=None):
        """``E y``: ``(B, m)`` of the words ``int32 (B,)``, and with ``tag_ids (R, K)`` also
        ``(R, K, m)`` of the tags, from one lookup (one embedding table in the exported file,
        where a second lookup made the converter keep a second copy of it)."""
        if tag_ids is None:
            return self.embedding(tokens), None
        n, K = ops.shape(tokens)[0], tag_ids.shape[1]
        rows = self.embedding(
            ops.concatenate([ops.cast(tokens, "int32"), ops.reshape(ops.cast(tag_ids, "int32"), (-1,))], axis=0)
        )  # (B + R K, m)
        return rows[:n], ops.reshape(rows[n:], (-1, K, self.embedding_dim))

    def step(self, tokens, h, c, features, keys, weights=None, training=False, tags=None):
        """One decoding step.

        Args:
            tokens: ``int32 (B,)`` previous words y_{t-1}.
            h, c: ``float32 (B, H)`` LSTM hidden state and memory.
            features, keys: from :meth:`start`, with B or 1 rows (1: shared by B beams).
            weights: optional ``(alpha (B, L)) -> (B, L)``: the location weights that make the
                context (default α itself: soft attention, eq. 13). Hard attention passes a
                sampled or arg-max one-hot location (eq. 8-9).
            training: enables dropout.
            tags: optional ``(tag_ids int32 (B or 1, K), tag_scores float (B or 1, K))`` with the
                same number of rows as ``features`` (needs ``tag_feature_dim``): attended
                beside the L locations (:meth:`tag_memory`).

        Returns:
            ``(logits (B, V), h (B, H), c (B, H), alpha (B, L), used (B, L))``; logits are
            unnormalised log-probabilities of y_t, ``used`` the weights the context was made with
            (with tags: α over the image locations, which sum to what the tags leave; in
            training renormalised to 1 for the doubly stochastic penalty. No division in the
            exported step: tflite-runtime 2.14's int8 ``DIV`` does not exist).
        """
        emb, tag_embeddings = self.embed(tokens, None if tags is None else tags[0])  # (B, m), (R, K, m)
        if tags is not None:
            tag_features, tag_keys, prior = self.tag_memory(tag_embeddings, tags[1])
            L = features.shape[1]
            joint = self.attend(
                h,
                ops.concatenate([keys, tag_keys], axis=1),  # (B, L + K, A)
                ops.concatenate([ops.zeros_like(keys[..., 0]), ops.cast(prior, keys.dtype)], axis=1),  # (B, L + K)
            )  # (B, L + K)
            context = ops.sum(
                joint[..., None] * ops.concatenate([features, tag_features], axis=1), axis=1
            )  # ẑ_t (B, F)
            alpha = used = joint[:, :L]  # where in the image (the rest of the weight is on the tags)
            if training:  # the doubly stochastic penalty sees where it looked in the image, renormalised
                used = alpha / ops.maximum(ops.sum(alpha, axis=-1, keepdims=True), 1e-6)
        else:
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
