"""The semantic attention captioner behind the step contract.

You, Jin, Wang, Fang & Luo, "Image Captioning with Semantic Attention" (CVPR 2016), §3.
Equation numbers are the paper's. With v the global image feature, {A_i} the top-k attribute
words a detector finds in the photo (``y^i`` their one-hot vectors) and E the word embedding:

    x_0 = W^{x,v} v,  h_0 = LSTM(x_0, 0)                                    (eq. 1: the image enters once)
    α_t^i ∝ exp(y_{t-1}ᵀ Ũ y^i),  Ũ = Eᵀ U E                                   (eq. 4, input attention)
    x_t = W^{x,Y}(E y_{t-1} + diag(w^{x,A}) Σ_i α_t^i E y^i)                  (eq. 5)
    h_t = LSTM(x_t, h_{t-1})                                                 (eq. 2)
    β_t^i ∝ exp(h_tᵀ V σ(E y^i))                                            (eq. 6, output attention)
    p_t ∝ exp(Eᵀ W^{Y,h}(h_t + diag(w^{Y,A}) Σ_i β_t^i σ(E y^i)) + b)        (eq. 7, E tied)

with σ = tanh. The paper writes the bilinear form over one-hot vectors and factors it through
E (its §3.2); here ``U`` is a d × d matrix on the embeddings. Training adds the attention
regulariser of §3.4, ``g(α) = ‖Σ_t α_t‖_p + Σ_t ‖α_t‖_q`` on α and on β.

The attributes are the detector's (:mod:`.detector`, frozen, copied into this model when a run
starts), never the reference captions' words: ``start`` ranks every attribute by a smooth
maximum of its cell logits (:func:`.detector.ranking_score`, the noisy-OR's order in a form
that survives int8) and keeps the top k, inside the graph, so the exported ``encode`` signature runs the
encoder, the detector and the selection.

In the step contract: state ``h``, ``c``; memory, what depends only on the k attributes:
``attribute_embeddings`` (E y^i), ``input_keys`` (U E y^i), ``output_values`` (σ(E y^i)),
``output_keys`` (V σ(E y^i)); items: ``attribute_words`` (vocabulary ids) and
``attribute_probs`` (the four memory tensors are its ``rows``: one row per attribute); attention
``attribute_attention`` ``(2, k)``: α_t (row 0) and β_t (row 1). With ``image_every_step`` (not
the paper's) the memory also holds ``image_context``, ``W^{x,v}' v``, added to every x_t. With
``visual_attention`` (not the paper's either) it holds ``features`` (``P a_i``, one row per grid
cell) and ``keys``, and each step attends over the grid as Xu et al. (2015, eq. 4–6) do: the
gated context ẑ_t is added to x_t and to the output layer's input (one Dense each,
``W^{x,z}`` and ``W^{Y,z}``); the attention output stays the attributes'.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import ops

from edgecap.models.base import StepwiseCaptioner
from edgecap.models.semantic_attention.config import AttributeDetectorConfig, SemanticAttentionConfig
from edgecap.models.semantic_attention.detector import cell_logits, head_layers, noisy_or_evidence, ranking_score
from edgecap.models.semantic_attention.layers import DiagonalScale, TiedEmbedding, VisualAttention
from edgecap.runtime.contract import AttentionDecl, ItemsDecl, StepContract, TensorDecl

EPS = 1e-6


class DetectorError(ValueError):
    """The attribute detector run does not fit the captioner (names the file)."""


def attention_regularizer(weights, mask, p: float = 2.0, q: float = 0.5):
    """You et al. §3.4: ``g(α) = ‖Σ_t α_t‖_p + Σ_t ‖α_t‖_q`` summed over the batch.

    The first term keeps any one attribute from taking the attention at every step (p > 1);
    the second makes each step's attention sparse (0 < q < 1).

    Args:
        weights: ``float (B, T, k)`` attention weights, each row summing to 1.
        mask: ``float (B, T)``: 1 for the words of the caption, 0 for padding.

    Returns:
        a float32 scalar.
    """
    w = ops.cast(weights, "float32") * mask[..., None]  # (B, T, k)
    total = ops.sum(ops.sum(w, axis=1) ** p, axis=-1) ** (1.0 / p)  # ‖Σ_t α_t‖_p  (B,)
    sparse = ops.sum(ops.sum((w + EPS) ** q, axis=-1) ** (1.0 / q) * mask, axis=1)  # Σ_t ‖α_t‖_q  (B,)
    return ops.sum(total + sparse)


class SemanticAttention(StepwiseCaptioner):
    """You et al. 2016 captioner over a frozen attribute detector.

    Args:
        vocab_size: V.
        config: the ``[model]`` section (:class:`SemanticAttentionConfig`).
        encoder_weights: overrides ``config.encoder_weights``.

    Raises:
        ValueError: a bad config value, an unknown backbone.
    """

    def __init__(
        self,
        vocab_size: int,
        config: SemanticAttentionConfig | None = None,
        encoder_weights: str | None = None,
        **kwargs,
    ):
        config, encoder = self.checked(config or SemanticAttentionConfig(), encoder_weights)
        super().__init__(vocab_size, **encoder, **kwargs)
        self.config = c = config
        d, A = c.hidden_dim, c.num_attributes
        dense = keras.layers.Dense
        # The detector (Fang et al. 2015), frozen: the same layers as AttributeDetector's.
        self.cell_hidden, self.attribute_logits = head_layers(
            c.detector_hidden_dim, A, self.spec.num_locations, trainable=False
        )
        self.attribute_word_ids = self.add_weight(
            shape=(A,), dtype="int32", initializer="zeros", trainable=False, name="attribute_word_ids"
        )  # attribute j → vocabulary id
        self.embedding = TiedEmbedding(
            vocab_size, d, name="embedding"
        )  # E, and the output layer with its bias b (eq. 7)
        self.image_input = dense(d, name="image_input")  # W^{x,v}  (eq. 1)
        self.input_bilinear = dense(d, use_bias=False, name="input_bilinear")  # U  (eq. 4)
        self.input_mix = DiagonalScale(name="input_mix")  # diag(w^{x,A})  (eq. 5)
        self.input_proj = dense(d, name="input_proj")  # W^{x,Y}  (eq. 5)
        if c.image_every_step:  # not in the paper (its eq. 1 feeds v once): W^{x,v}' v added to every x_t
            self.image_step = dense(d, use_bias=False, name="image_step")
        if c.visual_attention:  # not in the paper either: Xu et al.'s soft attention over the grid
            self.visual = VisualAttention(c.projection_dim, c.attention_dim, name="visual_attention")
            self.visual_input = dense(d, use_bias=False, name="visual_input")  # W^{x,z}: ẑ_t into x_t
            self.visual_output = dense(d, use_bias=False, name="visual_output")  # W^{Y,z}: ẑ_t into eq. 7's sum
        self.lstm_input = dense(4 * d, name="lstm_input")
        self.lstm_hidden = dense(4 * d, use_bias=False, name="lstm_hidden")
        self.output_bilinear = dense(d, use_bias=False, name="output_bilinear")  # V  (eq. 6)
        self.output_mix = DiagonalScale(name="output_mix")  # diag(w^{Y,A})  (eq. 7)
        self.output_proj = dense(d, name="output_proj")  # W^{Y,h}  (eq. 7)
        self.drop = keras.layers.Dropout(c.dropout)
        for mix in (self.input_mix, self.output_mix):
            mix.build((None, d))  # also when its attention is off (an ablation), so every run has one layout

    # --- the contract ---------------------------------------------------------------------------
    def step_contract(self) -> StepContract:
        c = self.config
        k, d = c.top_k, c.hidden_dim
        per_attribute = []  # memory with one row per attribute, in the items' order
        if c.input_attention:
            per_attribute += ["attribute_embeddings", "input_keys"]
        if c.output_attention:
            per_attribute += ["output_values", "output_keys"]
        tensors = [TensorDecl("h", (d,), "state"), TensorDecl("c", (d,), "state")] + [
            TensorDecl(n, (k, d), "memory") for n in per_attribute
        ]
        if c.image_every_step:
            tensors.append(TensorDecl("image_context", (d,), "memory"))
        if c.visual_attention:
            L = self.spec.num_locations
            tensors += [
                TensorDecl("features", (L, c.projection_dim), "memory"),
                TensorDecl("keys", (L, c.attention_dim), "memory"),
            ]
        attention = (
            AttentionDecl("attribute_attention", (2, k), "items") if c.input_attention or c.output_attention else None
        )
        return StepContract(
            tuple(tensors), attention, ItemsDecl("attribute_words", "attribute_probs", k, tuple(per_attribute))
        )

    def detect(self, annotations):
        """Annotation vectors ``(B, L, D)`` → ``(attribute indices int32 (B, k), probabilities float32 (B, k))``
        of the top-k attributes by :func:`.detector.ranking_score`, with their noisy-OR probabilities."""
        z = cell_logits(annotations, self.cell_hidden, self.attribute_logits)  # (B, L, A)
        _, index = ops.top_k(ranking_score(z), self.config.top_k)  # (B, k)
        evidence = ops.take_along_axis(noisy_or_evidence(z), index, axis=1)  # s_j = Σ_i softplus(z_ij)  (B, k)
        return index, 1.0 - ops.exp(-evidence)  # P_j = 1 − exp(−s_j)  (Fang et al. eq. 1)

    def lstm(self, x, h, c):
        """One LSTM step (gate order i, f, o, g) from the input x_t ``(B, d)``: ``(h, c)``."""
        z = self.lstm_input(x) + self.lstm_hidden(h)  # (B, 4d)
        i, f, o, g = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        return ops.sigmoid(o) * ops.tanh(c), c

    def start(self, annotations, training: bool = False) -> dict:
        annotations = ops.cast(annotations, self.compute_dtype)
        index, probs = self.detect(annotations)
        words = ops.take(self.attribute_word_ids, index)  # vocabulary ids  (B, k)
        v = ops.mean(annotations, axis=1)  # the global image feature  (B, D)
        x0 = self.drop(self.image_input(v), training=training)  # W^{x,v} v  (B, d)
        zeros = ops.zeros_like(x0)
        h, c = self.lstm(x0, zeros, zeros)  # eq. 1: the image is the LSTM's first input, and only that
        out = {"h": h, "c": c, "attribute_words": words, "attribute_probs": probs}
        # E y^i  (B, k, d), gathered from the A attribute rows of E: the exported encode then holds
        # an (A, d) constant, not a third copy of the (V, d) embedding beside decode_step's two
        embedded = ops.take(self.embedding(self.attribute_word_ids), index, axis=0)
        if self.config.input_attention:
            out.update(attribute_embeddings=embedded, input_keys=self.input_bilinear(embedded))
        if self.config.output_attention:
            values = ops.tanh(embedded)  # σ(E y^i)
            out.update(output_values=values, output_keys=self.output_bilinear(values))
        if self.config.image_every_step:
            out["image_context"] = self.image_step(v)  # W^{x,v}' v  (B, d)
        if self.config.visual_attention:
            out["features"], out["keys"] = self.visual.memory(annotations)  # P a_i (B, L, P), W_a P a_i + b (B, L, A)
        return out

    def step(self, tokens, state: dict, memory: dict, training: bool = False):
        cfg = self.config
        word = self.embedding(tokens)  # E y_{t-1}  (B, d)
        batch = ops.shape(word)[0]
        zeros = ops.zeros((batch, cfg.top_k), word.dtype)
        alpha = beta = zeros
        if cfg.input_attention:
            alpha = ops.softmax(ops.sum(word[:, None, :] * memory["input_keys"], axis=-1), axis=-1)  # eq. 4  (B, k)
            word = word + self.input_mix(ops.sum(alpha[..., None] * memory["attribute_embeddings"], axis=1))  # eq. 5
        x = self.input_proj(word)  # x_t  (B, d)
        if cfg.image_every_step:
            x = x + memory["image_context"]
        if cfg.visual_attention:
            context, _ = self.visual(state["h"], memory["features"], memory["keys"])  # β_t ẑ_t from h_{t-1}  (B, P)
            x = x + self.visual_input(context)
        x = self.drop(x, training=training)
        h, c = self.lstm(x, state["h"], state["c"])
        out = h
        if cfg.visual_attention:
            out = out + self.visual_output(context)
        if cfg.output_attention:
            beta = ops.softmax(ops.sum(h[:, None, :] * memory["output_keys"], axis=-1), axis=-1)  # eq. 6  (B, k)
            out = out + self.output_mix(ops.sum(beta[..., None] * memory["output_values"], axis=1))  # eq. 7
        logits = self.embedding(
            self.output_proj(self.drop(out, training=training)), reverse=True
        )  # E W^{Y,h}(…) + b  float32 (B, V)
        attention = (
            ops.concatenate([alpha, beta], axis=-1) if cfg.input_attention or cfg.output_attention else None
        )  # (B, 2k)
        return logits, {"h": h, "c": c}, attention

    def sequence_loss(self, logits, attentions: list, captions) -> None:
        """λ (g(α) + g(β)) per target word (You et al. §3.4)."""
        cfg = self.config
        if cfg.attention_regularization <= 0 or attentions[0] is None:
            return
        mask = ops.cast(captions[:, 1:] != 0, "float32")  # (B, T)
        weights = ops.stack(attentions, axis=1)  # (B, T, 2k)
        parts = ([weights[..., : cfg.top_k]] if cfg.input_attention else []) + (
            [weights[..., cfg.top_k :]] if cfg.output_attention else []
        )
        penalty = sum(attention_regularizer(w, mask, cfg.norm_p, cfg.norm_q) for w in parts)
        self.add_loss(cfg.attention_regularization * penalty / ops.maximum(ops.sum(mask), 1.0))

    # --- a new run takes the detector -------------------------------------------------------
    def prepare(self, vocab) -> None:
        """Copy the trained detector of ``config.detector`` into this model and map its
        attribute words to ``vocab``'s ids.

        Raises:
            DetectorError: no detector run, one with another encoder or other sizes, an
                attribute vocabulary that does not fit its checkpoint, or an attribute word
                missing from the caption vocabulary (each names the file).
        """
        from edgecap.models import registry
        from edgecap.models.semantic_attention.attributes import AttributeVocabulary, AttributeVocabularyError
        from edgecap.models.semantic_attention.detector import AttributeDetector

        c = self.config
        run = Path(c.detector)
        config_path, checkpoint = run / "config.toml", run / "best.weights.h5"
        if not c.detector or not config_path.is_file() or not checkpoint.is_file():
            raise DetectorError(
                f"{run}: model.detector must be the run directory of a trained attribute detector (with config.toml and best.weights.h5)"
            )
        try:
            theirs = registry.read_model_config(config_path)
        except ValueError as e:
            raise DetectorError(str(e)) from None
        if not isinstance(theirs, AttributeDetectorConfig):
            raise DetectorError(f"{config_path}: a {theirs.architecture} run, not an attribute detector")
        if (theirs.backbone, _weights_key(theirs.encoder_weights), theirs.fine_tune_from) != (
            c.backbone,
            _weights_key(c.encoder_weights),
            "",
        ):
            raise DetectorError(
                f"{config_path}: the detector reads the features of encoder {theirs.backbone} {theirs.encoder_weights!r} (fine-tuned from {theirs.fine_tune_from!r}), "
                f"this captioner those of {c.backbone} {c.encoder_weights!r}; train both on one frozen encoder"
            )
        if (theirs.num_attributes, theirs.hidden_dim) != (c.num_attributes, c.detector_hidden_dim):
            raise DetectorError(
                f"{config_path}: {theirs.num_attributes} attributes and hidden_dim {theirs.hidden_dim}; set model.num_attributes and model.detector_hidden_dim to these"
            )
        try:
            attributes = AttributeVocabulary.load(run / "attributes.json", c.num_attributes)
        except AttributeVocabularyError as e:
            raise DetectorError(str(e)) from None
        ids = [vocab.id_of(w) for w in attributes.words]
        missing = [w for w, i in zip(attributes.words, ids) if i is None]
        if missing:
            raise DetectorError(
                f"{run / 'attributes.json'}: attribute words not in the caption vocabulary: {missing[:10]}; the detector was trained on other captions"
            )
        detector = AttributeDetector(theirs, encoder_weights="none")
        detector.build()
        try:
            detector.load_weights(checkpoint)
        except (ValueError, KeyError) as e:
            raise DetectorError(f"{checkpoint}: does not fit the detector of {config_path} ({e})") from e
        for ours, source in (
            (self.cell_hidden, detector.cell_hidden),
            (self.attribute_logits, detector.attribute_logits),
        ):
            for v, w in zip(ours.weights, source.weights):
                v.assign(w.value)
        self.attribute_word_ids.assign(np.array(ids, np.int32))


def _weights_key(weights: str) -> str:
    """Encoder weights as compared between the detector and the captioner: a path, resolved."""
    return str(Path(weights).resolve()) if weights not in ("", "imagenet", "none") else weights


def build(
    model_config: SemanticAttentionConfig, vocab_size: int, encoder_weights: str | None = None, train_config=None
) -> SemanticAttention:
    """The registry's builder: a built :class:`SemanticAttention` (the detector is copied in by :meth:`SemanticAttention.prepare`)."""
    model = SemanticAttention(vocab_size, model_config, encoder_weights)
    model.build()
    return model
