"""The Show, Attend and Tell captioner behind the step contract: soft or hard attention."""

from __future__ import annotations

import keras
from keras import ops

from edgecap.models.base import StepwiseCaptioner
from edgecap.models.show_attend_tell.config import ShowAttendTellConfig
from edgecap.models.show_attend_tell.decoder import SoftAttentionDecoder
from edgecap.runtime.contract import AttentionDecl, StepContract, TagsDecl, TensorDecl

TAG_IDS, TAG_SCORES = "tag_ids", "tag_scores"  #: the memory tensors of a tag-conditioned model's tags


class ShowAttendTell(StepwiseCaptioner):
    """Xu et al. 2015 captioner.

    Step contract: state ``h``, ``c`` ``(H,)``; memory ``features (L, F)`` (the annotation
    vectors, projected when ``projection_dim`` > 0) and ``keys (L, A)`` (``W_a a_i + b``);
    attention ``alpha`` over the ``g × g`` grid. With ``tag_slots`` K > 0 the memory also holds
    the photo's tags, ``tag_ids int32 (K,)`` and ``tag_scores (K,)``, which the runtime fills
    from the tagger (:class:`~edgecap.runtime.contract.TagsDecl`), not ``encode``.

    Training (teacher forcing) adds the doubly stochastic attention penalty
    ``λ Σ_i (1 − Σ_t α_ti)²`` (eq. 14) to ``self.losses``, divided by the number of target
    words in the batch: the cross-entropy is a per-word mean, so this keeps the paper's balance
    between the caption's negative log-likelihood and the penalty.

    With ``attention="hard"`` (§4.1) each training step samples a location
    ``s_t ~ Multinoulli(α_t)`` and uses ``ẑ_t = a_{s_t}``, except for the images (drawn with
    probability ``expected_context_prob``, per image) that use the expected context
    ``Σ α a_i``; the loss adds the REINFORCE terms of eq. 12 for the sampled images:
    ``−λ_r (log p(y|s,a) − b) Σ_t log α_{t,s_t} − λ_e Σ_t H[α_t]``, with ``b`` a moving
    average of ``log p(y|s,a)`` (decay ``baseline_decay``, bias-corrected as in Adam).
    Decoding uses the expected context (as the authors' sampler does) or, with
    ``hard_decoding="argmax"``, the most probable location; ``alpha`` is then that one-hot map.

    Args:
        vocab_size: V.
        config: the ``[model]`` section (:class:`ShowAttendTellConfig`).
        encoder_weights: overrides ``config.encoder_weights``.
        doubly_stochastic: λ of eq. 14 (0 disables the penalty).

    Raises:
        ValueError: unknown backbone, a ``fine_tune_from`` that cannot split it, or a bad config value.
    """

    def __init__(
        self,
        vocab_size: int,
        config: ShowAttendTellConfig | None = None,
        encoder_weights: str | None = None,
        doubly_stochastic: float = 1.0,
        **kwargs,
    ):
        config, encoder = self.checked(config or ShowAttendTellConfig(), encoder_weights)
        super().__init__(vocab_size, **encoder, **kwargs)
        self.config = config
        c = config
        self.decoder = SoftAttentionDecoder(
            vocab_size,
            c.embedding_dim,
            c.hidden_dim,
            c.attention_dim,
            c.dropout,
            c.context_dropout,
            c.projection_dim,
            (c.projection_dim or self.spec.dim) if c.tag_slots else 0,
            name="decoder",
        )
        self.doubly_stochastic = doubly_stochastic
        self.hard = c.attention == "hard"
        if self.hard:
            self.seeds = keras.random.SeedGenerator(0, name="location_sampler")
            # Moving average of log p(y|s,a) and the number of updates (for the bias correction).
            self.baseline = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="reinforce_baseline", aggregation="mean"
            )
            self.baseline_updates = self.add_weight(
                shape=(),
                initializer="zeros",
                trainable=False,
                name="reinforce_baseline_updates",
                aggregation="only_first_replica",
            )

    def step_contract(self) -> StepContract:
        d, s, K = self.decoder, self.spec, self.config.tag_slots
        F = d.projection_dim or s.dim
        tags = (TensorDecl(TAG_IDS, (K,), "memory", "int32"), TensorDecl(TAG_SCORES, (K,), "memory")) if K else ()
        return StepContract(
            (
                TensorDecl("h", (d.hidden_dim,), "state"),
                TensorDecl("c", (d.hidden_dim,), "state"),
                TensorDecl("features", (s.num_locations, F), "memory"),
                TensorDecl("keys", (s.num_locations, d.attention_dim), "memory"),
                *tags,
            ),
            AttentionDecl("alpha", (s.grid, s.grid), "grid"),
            tags=TagsDecl(TAG_IDS, TAG_SCORES, K, self.config.tag_min_score, self.config.tagger) if K else None,
        )

    def start(self, annotations, training: bool = False) -> dict:
        h, c, features, keys = self.decoder.start(annotations)
        return {"h": h, "c": c, "features": features, "keys": keys}

    def step(self, tokens, state: dict, memory: dict, training: bool = False):
        weights = self._argmax_location if self.hard and self.config.hard_decoding == "argmax" else None
        tags = (memory[TAG_IDS], memory[TAG_SCORES]) if self.config.tag_slots else None
        logits, h, c, alpha, used = self.decoder.step(
            tokens, state["h"], state["c"], memory["features"], memory["keys"], weights, training=training, tags=tags
        )
        return logits, {"h": h, "c": c}, used

    @staticmethod
    def _argmax_location(alpha):
        """One-hot of the most probable location (ties share the weight equally)."""
        top = ops.cast(alpha >= ops.max(alpha, axis=-1, keepdims=True), alpha.dtype)
        return top / ops.sum(top, axis=-1, keepdims=True)

    # --- training ------------------------------------------------------------------------------
    def call(self, inputs, training=False):
        if not (self.hard and training):
            return super().call(inputs, training)
        return self._hard_attention_call(inputs)

    def sequence_loss(self, logits, attentions: list, captions) -> None:
        self._doubly_stochastic_penalty(attentions, captions)

    def _doubly_stochastic_penalty(self, alphas: list, captions) -> None:
        if self.doubly_stochastic <= 0:
            return
        mask = ops.cast(captions[:, 1:] != 0, "float32")  # (B, T)
        coverage = ops.sum(ops.cast(ops.stack(alphas, axis=1), "float32") * mask[..., None], axis=1)  # Σ_t α_ti (B, L)
        penalty = ops.sum((1.0 - coverage) ** 2)  # Σ_b Σ_i (1 − Σ_t α_ti)²
        # Per target word, like the cross-entropy, so λ keeps the paper's per-caption balance.
        self.add_loss(self.doubly_stochastic * penalty / ops.maximum(ops.sum(mask), 1.0))

    def _hard_attention_call(self, inputs):
        """Teacher forcing with sampled locations and the REINFORCE terms of Xu et al. eq. 12."""
        c = self.config
        annotations = (
            self.annotate(inputs["annotations"])
            if "annotations" in inputs
            else self.encoder(inputs["images"], training=False)
        )
        captions = ops.cast(inputs["captions"], "int32")  # (B, T+1)
        state, memory = self.split(self.start(annotations, training=True))
        batch = ops.shape(captions)[0]
        expected = ops.cast(
            keras.random.uniform((batch, 1), seed=self.seeds) < c.expected_context_prob, "float32"
        )  # (B, 1), per image
        log_p_locations, entropies, logits, alphas = [], [], [], []

        def sample(alpha):  # (B, L) → one-hot s_t, or α itself for the images that use the expectation
            alpha32 = ops.cast(alpha, "float32")
            log_alpha = ops.log(ops.maximum(alpha32, 1e-8))
            s = keras.random.categorical(log_alpha, 1, seed=self.seeds)[:, 0]  # (B,)
            one_hot = ops.one_hot(s, ops.shape(alpha)[-1])  # (B, L)
            log_p_locations.append(ops.sum(one_hot * log_alpha, axis=-1))  # log p(s_t | a)  (B,)
            entropies.append(-ops.sum(alpha32 * log_alpha, axis=-1))  # H[α_t]  (B,)
            return ops.cast(expected * alpha32 + (1.0 - expected) * ops.stop_gradient(one_hot), alpha.dtype)

        for t in range(captions.shape[1] - 1):
            logits_t, h, c_, alpha, _ = self.decoder.step(
                captions[:, t], state["h"], state["c"], memory["features"], memory["keys"], sample, training=True
            )
            state = {"h": h, "c": c_}
            logits.append(logits_t)
            alphas.append(alpha)
        logits = ops.stack(logits, axis=1)  # (B, T, V)
        targets = captions[:, 1:]
        mask = ops.cast(targets != 0, "float32")  # (B, T)
        words = ops.maximum(ops.sum(mask), 1.0)
        log_probs = ops.take_along_axis(
            ops.log_softmax(ops.cast(logits, "float32"), axis=-1), targets[..., None], axis=-1
        )[..., 0]  # (B, T)
        log_likelihood = ops.stop_gradient(ops.sum(log_probs * mask, axis=1))  # log p(y | s, a)  (B,)
        sampled = 1.0 - expected[:, 0]  # (B,)
        baseline = self._update_baseline(log_likelihood, sampled)
        log_p_s = ops.sum(ops.stack(log_p_locations, axis=1) * mask, axis=1)  # (B,)
        entropy = ops.sum(ops.stack(entropies, axis=1) * mask, axis=1)  # (B,)
        reinforce = -c.reward_weight * ops.sum(sampled * (log_likelihood - baseline) * log_p_s) / words
        bonus = -c.entropy_weight * ops.sum(sampled * entropy) / words
        self.add_loss(reinforce + bonus)
        self._doubly_stochastic_penalty(alphas, captions)
        return logits

    def _update_baseline(self, log_likelihood, sampled):
        """b_k = decay b_{k−1} + (1 − decay) mean log p(y|s̃,a) (§4.1); returns the bias-corrected b before this batch."""
        decay = self.config.baseline_decay
        n = self.baseline_updates
        mean = ops.sum(log_likelihood * sampled) / ops.maximum(ops.sum(sampled), 1.0)  # over the sampled images
        corrected = ops.where(
            n > 0, self.baseline / ops.maximum(1.0 - decay**n, 1e-8), mean
        )  # the first batch is its own baseline
        self.baseline.assign(decay * self.baseline + (1.0 - decay) * mean)
        self.baseline_updates.assign(n + 1.0)
        return ops.stop_gradient(corrected)


def build(
    model_config: ShowAttendTellConfig, vocab_size: int, encoder_weights: str | None = None, train_config=None
) -> ShowAttendTell:
    """The registry's builder: a built :class:`ShowAttendTell`."""
    model = ShowAttendTell(vocab_size, model_config, encoder_weights, model_config.doubly_stochastic)
    model.build()
    return model
