"""The image–sentence alignment model of Karpathy & Fei-Fei (CVPR 2015, §3.1).

Regions and words are mapped to one h-dimensional multimodal space:

- **regions** (§3.1.1): ``v_i = W_m CNN(I)_i + b_m``. The paper's regions are the top 19 RCNN
  detections plus the whole image; here they are the encoder's grid cells (49 for
  MobileNetV2 at 224 px) plus the whole image (the grid's mean, MobileNetV2's global pool),
  so R = 50. Later work (SCAN, Lee et al. 2018; VSE∞, Chen et al. 2021) shows a grid does as
  well as detections, and it needs no detector on the device.
- **words** (§3.1.2), a bidirectional ReLU RNN over the sentence::

      e_t   = f(W_e W_w I_t + b_e)
      h^f_t = f(e_t + W_f h^f_{t-1} + b_f)
      h^b_t = f(e_t + W_b h^b_{t+1} + b_b)
      s_t   = f(W_d (h^f_t + h^b_t) + b_d)

  with f = ReLU. ``W_w`` is learned (the paper's word2vec cannot be downloaded here), or
  initialised from a local file (``model.word_vectors``).
- **score** (eq. 8): ``S_kl = Σ_{t ∈ g_l} max_{i ∈ g_k} v_iᵀ s_t``: every word of sentence l
  takes its best region of image k.
- **loss** (eq. 9), both directions::

      C = Σ_k [ Σ_l max(0, S_kl − S_kk + Δ) + Σ_l max(0, S_lk − S_kk + Δ) ]

  or, as an option, only the hardest negative of each row and column (VSE++, Faghri et al.
  2018, eq. 5), after a warm-up of the summed form.

The two halves are exported as the signatures ``embed_image`` (uint8 photo → region
vectors) and ``embed_sentence`` (token ids → word vectors); the score is computed by the
runtime (:mod:`edgecap.runtime.retriever`), which needs no TensorFlow. Each recurrence sums
two Dense layers (one per input), never one Dense over a concatenation, so full-integer
quantization gives each input its own scale.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import ops

from edgecap.models.alignment.config import AlignmentConfig
from edgecap.models.backbones import FineTunedEncoder

PAD_ID = 0


def pair_scores(regions, words, word_mask):
    """Eq. 8 for every image × sentence pair of a batch.

    Args:
        regions: ``float (B, R, h)`` region vectors v_i.
        words: ``float (B', T, h)`` word vectors s_t.
        word_mask: ``float (B', T)``, 1 for a word, 0 for padding.

    Returns:
        ``float32 (B, B')``: entry (k, l) is S_kl = Σ_t max_i v_iᵀ s_t of image k, sentence l.
    """
    dots = ops.einsum("ird,jtd->ijrt", ops.cast(regions, "float32"), ops.cast(words, "float32"))  # (B, B', R, T)
    best = ops.max(dots, axis=2)  # (B, B', T)
    return ops.sum(best * ops.cast(word_mask, "float32")[None], axis=-1)  # (B, B')


def ranking_loss(scores, same_image, margin: float = 1.0, hardest=False):
    """The bidirectional max-margin loss of eq. 9, per positive pair.

    Args:
        scores: ``float32 (B, B)``, S_kl with the true pairs on the diagonal (image k, sentence k).
        same_image: ``bool (B, B)``, True where image k and sentence l's image are the same
            photo: those pairs are not negatives.
        margin: Δ (1 in the paper).
        hardest: a boolean (tensor): only the hardest negative of each row and column
            (VSE++, Faghri et al. 2018) instead of the sum over negatives.

    Returns:
        scalar float32: the loss summed over both directions, averaged over the B positive pairs.
    """
    positive = ops.diagonal(scores)  # (B,) S_kk
    negative = ops.logical_not(same_image)
    # annotation: image k ranks sentences l;  search: sentence l ranks images k (S_kl vs S_ll)
    cost_sentence = ops.where(negative, ops.relu(margin + scores - positive[:, None]), 0.0)  # (B, B)
    cost_image = ops.where(negative, ops.relu(margin + scores - positive[None, :]), 0.0)  # (B, B)
    summed = ops.sum(cost_sentence) + ops.sum(cost_image)
    hardest_form = ops.sum(ops.max(cost_sentence, axis=1)) + ops.sum(ops.max(cost_image, axis=0))
    n = ops.cast(ops.shape(scores)[0], "float32")
    return ops.where(hardest, hardest_form, summed) / n


def load_word_vectors(path: str | Path, words: list[str], dim: int) -> tuple[np.ndarray, int]:
    """Rows of ``W_w`` from a word2vec/GloVe text file (``word v1 .. v_dim`` a line).

    Returns:
        ``(float32 (V, dim) matrix, number of vocabulary words found)``; words not in the
        file keep small random vectors.

    Raises:
        ValueError: the file is missing, or a line has another number of values than ``dim``
            (names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model.word_vectors file not found")
    index = {w: i for i, w in enumerate(words)}
    rng = np.random.default_rng(0)
    matrix = rng.normal(0.0, 0.05, (len(words), dim)).astype(np.float32)
    found = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "<count> <dim>"
            if parts[0] not in index:
                continue
            if len(parts) != dim + 1:
                raise ValueError(
                    f"{path}:{n}: {len(parts) - 1} values for {parts[0]!r}, expected model.embedding_dim = {dim}"
                )
            matrix[index[parts[0]]] = np.asarray(parts[1:], np.float32)
            found += 1
    return matrix, found


class VisualSemanticAlignment(FineTunedEncoder, keras.Model):
    """Regions and words in one multimodal space; the eq. 8 score and eq. 9 loss.

    Args:
        vocab_size: V, including the four special tokens (``<pad>`` is id 0).
        config: the ``[model]`` section (:class:`AlignmentConfig`).
        encoder_weights: overrides ``config.encoder_weights``.

    Raises:
        ValueError: a bad config value, an unknown backbone, or a ``fine_tune_from`` that
            cannot split it.
    """

    def __init__(
        self, vocab_size: int, config: AlignmentConfig | None = None, encoder_weights: str | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.init_encoder(
            config or AlignmentConfig(), encoder_weights
        )  # frozen, or trained from config.fine_tune_from on
        config = self.config
        self.vocab_size = vocab_size
        h, dense = config.hidden_dim, keras.layers.Dense
        self.region_proj = dense(h, name="region_proj")  # W_m, b_m
        self.word_embedding = keras.layers.Embedding(vocab_size, config.embedding_dim, name="word_embedding")  # W_w
        self.word_proj = dense(h, activation="relu", name="word_proj")  # e_t = f(W_e W_w I_t + b_e)
        self.forward_recurrent = dense(h, name="forward_recurrent")  # W_f h^f_{t-1} + b_f
        self.backward_recurrent = dense(h, name="backward_recurrent")  # W_b h^b_{t+1} + b_b
        self.output_proj = dense(h, activation="relu", name="output_proj")  # s_t = f(W_d (h^f_t + h^b_t) + b_d)
        # 1 for every word, 0 for <pad>: a table lookup rather than a comparison, so that the
        # mask is an ordinary quantizable tensor in the int8 file.
        self.word_keep = keras.layers.Embedding(
            vocab_size, 1, trainable=False, name="word_keep", embeddings_initializer=_keep_initializer
        )
        self.drop = keras.layers.Dropout(config.dropout)
        self.hardest_from_step = (
            -1
        )  #: with loss "hardest": the optimizer step from which it applies (set by the trainer)

    @property
    def num_regions(self) -> int:
        """R: grid cells plus the whole image."""
        return self.spec.num_locations + 1

    # --- the two halves ---------------------------------------------------------------------------
    def regions(self, annotations, training: bool = False):
        """Annotation vectors ``(B, L, D)`` → region vectors ``float (B, L + 1, h)``: the L grid
        cells and the whole image (their mean), each ``W_m CNN(I)_i + b_m``."""
        a = ops.cast(annotations, self.compute_dtype)
        whole = ops.mean(a, axis=1, keepdims=True)  # (B, 1, D)
        cells = ops.concatenate([a, whole], axis=1)  # (B, R, D)
        return self.region_proj(self.drop(cells, training=training))  # (B, R, h)

    def words(self, tokens, training: bool = False):
        """Token ids ``int32 (B, T)`` (``<pad>`` after the words) → word vectors ``float (B, T, h)``,
        zero at padding (§3.1.2)."""
        tokens = ops.cast(tokens, "int32")
        keep = self.word_keep(tokens)  # (B, T, 1)
        e = self.word_proj(self.drop(self.word_embedding(tokens), training=training))  # (B, T, h)
        T = tokens.shape[1]
        h = ops.zeros_like(e[:, 0])
        forward = []
        for t in range(T):
            h = ops.relu(e[:, t] + self.forward_recurrent(h)) * keep[:, t]
            forward.append(h)
        h = ops.zeros_like(e[:, 0])
        backward = [None] * T
        for t in reversed(range(T)):  # padding first: the state stays 0 until the last word
            h = ops.relu(e[:, t] + self.backward_recurrent(h)) * keep[:, t]
            backward[t] = h
        s = self.output_proj(ops.stack(forward, axis=1) + ops.stack(backward, axis=1))  # (B, T, h)
        return s * keep

    def unit(self, x):
        """``x`` scaled to unit length along the last axis with ``model.normalize``, else as it
        is. Applied to :meth:`regions` and :meth:`words` before eq. 8; the exported signatures
        return the vectors before it and the runtime normalises them (a sum of squares is a poor
        fit for int8)."""
        if not self.config.normalize:
            return x
        # x / sqrt(|x|² + ε): its gradient stays bounded at a zero vector (a word whose ReLU output
        # is all 0), where x / |x| has none and a NaN ends the run.
        return x * ops.rsqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + 1e-6)

    def embed_image(self, images):
        """The ``embed_image`` signature: ``uint8 (B, S, S, 3)`` → ``float32 (B, R, h)`` (before :meth:`unit`)."""
        return ops.cast(self.regions(self.encoder(images, training=False)), "float32")

    def embed_sentence(self, tokens):
        """The ``embed_sentence`` signature: ``int32 (B, T)`` → ``float32 (B, T, h)`` (before :meth:`unit`)."""
        return ops.cast(self.words(tokens), "float32")

    # --- training -------------------------------------------------------------------------------
    def build(self, input_shape=None) -> None:
        """Create every variable (call before loading weights)."""
        self.regions(ops.zeros((1, self.spec.num_locations, self.spec.dim)))
        self.words(ops.zeros((1, self.config.max_words), "int32"))
        self.built = True

    def call(self, inputs, training=False):
        """``{"annotations": cached features, "tokens": int32 (B, T)[, "image_index": (B,)]}`` → S ``float32 (B, B)`` (eq. 8)."""
        regions = self.unit(self.regions(self.annotate(inputs["annotations"]), training=training))
        tokens = ops.cast(inputs["tokens"], "int32")
        return pair_scores(regions, self.unit(self.words(tokens, training=training)), ops.not_equal(tokens, PAD_ID))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        index = ops.cast(x["image_index"], "int32")
        same = ops.equal(index[:, None], index[None, :])
        hardest = False
        if self.config.loss == "hardest":
            hardest = ops.greater_equal(ops.cast(self.optimizer.iterations, "int64"), self.hardest_from_step)
        loss = ranking_loss(y_pred, same, self.config.margin, hardest)
        return loss + ops.sum(self.losses) if self.losses else loss


def _keep_initializer(shape, dtype=None):
    keep = np.ones(shape, np.float32)
    keep[PAD_ID] = 0.0
    return ops.convert_to_tensor(keep, dtype=dtype or "float32")


def build(
    config: AlignmentConfig, vocab_size: int, encoder_weights: str | None = None, train_config=None
) -> VisualSemanticAlignment:
    """Registry builder: the model, built (variables created)."""
    model = VisualSemanticAlignment(vocab_size, config, encoder_weights)
    model.build()
    return model
