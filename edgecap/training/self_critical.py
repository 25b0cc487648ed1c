"""Self-critical sequence training (SCST): fine-tune a captioner directly on CIDEr-D.

Rennie et al., "Self-critical Sequence Training for Image Captioning", CVPR 2017, with the
baseline of Luo, "A Better Variant of Self-Critical Sequence Training", arXiv:2003.09971.
For every image, K captions ``w^k`` are sampled from the model; the reward ``r(w^k)`` is their
CIDEr-D against the image's references, the baseline ``b_k`` the mean reward of the other
K − 1 samples, and the REINFORCE (Williams 1992) estimate of the gradient of ``−E[r]`` is

    ∇L = −1/N Σ_k (r(w^k) − b_k) Σ_t ∇ log p(w^k_t | w^k_<t, I)          (Rennie et al. eq. 7)

with ``N`` the number of sampled words. It starts from a teacher-forced run
(``train.init_from``) and changes only the training objective: the model, and so the exported
``decode_step``, is the same. It works for any captioner of the step contract
(:func:`self_critical`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from edgecap.runtime.vocabulary import Vocabulary, tokenize


class _Frequencies(dict):
    """Document frequencies that read 0 for an unseen n-gram without storing it."""

    def __missing__(self, key):
        return 0.0


class _CorpusSized(list):
    """A batch of cooked references whose ``len()`` is the corpus size.

    pycocoevalcap's ``CiderScorer.compute_cider`` takes the idf numerator ``log N`` from
    ``len(self.crefs)``; scoring a batch against corpus frequencies needs the corpus' ``N``.
    """

    def __init__(self, items, corpus_size: int):
        super().__init__(items)
        self.corpus_size = corpus_size

    def __len__(self) -> int:
        return self.corpus_size


class CorpusCiderD:
    """CIDEr-D rewards (×1, as pycocoevalcap computes it: 10 × mean cosine) with corpus idf.

    pycocoevalcap takes document frequencies from the references it scores; a batch of a few
    images is far too few for that, so they come once from the whole training set, as in the
    SCST papers.

    Args:
        references: per training image, its reference captions (raw text; tokenised with
            :func:`edgecap.runtime.vocabulary.tokenize`).

    Raises:
        ValueError: no references, or an image without any.
    """

    def __init__(self, references: Sequence[Sequence[str]]):
        from pycocoevalcap.cider.cider_scorer import CiderScorer, cook_refs

        if not references or any(len(r) == 0 for r in references):
            raise ValueError("CorpusCiderD needs at least one reference caption for every image")
        self._cooked = [cook_refs([" ".join(tokenize(r)) for r in refs]) for refs in references]
        counter = CiderScorer()
        counter.crefs = self._cooked
        counter.compute_doc_freq()
        self._df = _Frequencies(counter.document_frequency)

    def __call__(self, candidates: Sequence[str], image_index: Sequence[int]) -> np.ndarray:
        """CIDEr-D of ``candidates[n]`` (space-separated words) against image ``image_index[n]``.

        Returns:
            ``float32 (N,)``; averaged and ×100 this is the ``cider_d`` of the evaluation.
        """
        from pycocoevalcap.cider.cider_scorer import CiderScorer, cook_test

        if len(candidates) != len(image_index):
            raise ValueError(f"{len(candidates)} candidates but {len(image_index)} image indices")
        scorer = CiderScorer()
        scorer.document_frequency = self._df
        scorer.ctest = [cook_test(c) for c in candidates]
        scorer.crefs = _CorpusSized([self._cooked[i] for i in image_index], len(self._cooked))
        return np.asarray(scorer.compute_cider(), np.float32)


def leave_one_out_advantage(rewards: tf.Tensor, num_samples: int) -> tf.Tensor:
    """``r_k − mean_{j≠k} r_j`` within each image's K samples (Luo 2020, eq. 3).

    Args:
        rewards: ``float32 (B*K,)``, the K samples of an image adjacent.
        num_samples: K ≥ 2.
    """
    if num_samples < 2:
        raise ValueError(f"the leave-one-out baseline needs at least 2 samples per image, got {num_samples}")
    r = tf.reshape(rewards, (-1, num_samples))  # (B, K)
    baseline = (tf.reduce_sum(r, axis=1, keepdims=True) - r) / (num_samples - 1)
    return tf.reshape(r - baseline, (-1,))


def self_critical(model):
    """``model`` (any built :class:`edgecap.models.base.StepwiseCaptioner`) with SCST as its ``train_step``.

    The model's class is extended by :class:`SelfCritical` in place: its variables, and so its
    checkpoints, stay the same.
    """
    cls = type(model)
    if not isinstance(model, SelfCritical):
        model.__class__ = type(f"SelfCritical{cls.__name__}", (SelfCritical, cls), {})
    return model


class SelfCritical:
    """Mixin: SCST ``train_step`` over the step contract (``start``/``step`` and teacher-forced ``call``).

    ``fit`` takes batches ``(annotations float16 (B, L, D), image_index int32 (B,))`` (see
    :func:`edgecap.data.pipeline.image_dataset`); call :meth:`configure_self_critical` first.
    Under a ``tf.distribute`` strategy each replica samples and scores its share of the images
    (the reward runs on the host), and the loss is divided by the replicas so that the
    all-reduced gradient is the mean (tested on two mirrored CPU replicas).
    """

    def configure_self_critical(
        self, vocab: Vocabulary, reward: CorpusCiderD, num_samples: int = 5, max_length: int = 20, seed: int = 0
    ) -> None:
        """Args:
        vocab: the run's vocabulary.
        reward: CIDEr-D scorer over the training images (indexed like the dataset).
        num_samples: K captions sampled per image.
        max_length: words sampled at most per caption (an ``<end>`` follows, if sampled).
        seed: sampling seed; the draws of a step depend on it and on the optimizer's step
            count, so a resumed run continues rather than repeats them.
        """
        if num_samples < 2 or max_length < 1:
            raise ValueError(f"num_samples must be >= 2 and max_length >= 1, got {num_samples}, {max_length}")
        self.vocab, self.reward, self.num_samples, self.max_length = vocab, reward, num_samples, max_length
        self.sample_seed = int(seed)
        suppressed = np.zeros(len(vocab), np.float32)
        suppressed[[vocab.pad_id, vocab.start_id, vocab.unk_id]] = -1e9  # as decoding_processors
        self.suppress = tf.constant(suppressed)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Nothing to build: the model is built and warm-started, its optimizer built, before
        ``fit`` (Keras would otherwise call it on an SCST batch, which is not its input)."""

    def sample(self, annotations):
        """K captions per image by ancestral sampling: ``int32 (B*K, T+1)`` = ``<start> w1 .. <end> <pad>..``."""
        v = self.vocab
        annotations = tf.repeat(self.annotate(annotations), self.num_samples, axis=0)  # (N, L, D)
        state, memory = self.split(self.start(annotations))
        tokens = tf.fill(tf.shape(annotations)[:1], v.start_id)  # (N,)
        done = tf.zeros_like(tokens, tf.bool)
        words = [tokens]
        step_seed = tf.cast(self.optimizer.iterations, tf.int32) * (self.max_length + 1)
        for t in range(self.max_length + 1):
            logits, state, _ = self.step(tokens, state, memory, training=False)
            logits = tf.cast(logits, tf.float32) + self.suppress  # (N, V)
            seed = tf.stack([tf.constant(self.sample_seed, tf.int32), step_seed + t])
            tokens = tf.cast(tf.random.stateless_categorical(logits, 1, seed)[:, 0], tf.int32)
            tokens = tf.where(done, v.pad_id, tokens)
            done = done | (tokens == v.end_id)
            words.append(tokens)
        return tf.stop_gradient(tf.stack(words, axis=1))  # (N, T+1)

    def _rewards(self, captions: np.ndarray, image_index: np.ndarray) -> np.ndarray:
        texts = [" ".join(self.vocab.decode(row)) for row in captions]
        return self.reward(texts, np.repeat(image_index, self.num_samples))

    def train_step(self, data):
        """One SCST update; logs the policy loss, the mean sampled reward (CIDEr-D / 100) and sampled words per caption."""
        annotations, image_index = data
        captions = self.sample(annotations)  # (N, T+1), N = B*K
        rewards = tf.numpy_function(self._rewards, [captions, image_index], tf.float32, stateful=False)
        rewards.set_shape(captions.shape[:1])
        advantage = leave_one_out_advantage(rewards, self.num_samples)  # (N,)
        targets = captions[:, 1:]  # (N, T)
        mask = tf.cast(targets != self.vocab.pad_id, tf.float32)
        with tf.GradientTape() as tape:
            inputs = {"annotations": tf.repeat(annotations, self.num_samples, axis=0), "captions": captions}
            logits = tf.cast(self(inputs, training=False), tf.float32) + self.suppress  # (N, T, V)
            log_probs = tf.gather(tf.nn.log_softmax(logits), targets, batch_dims=2)  # (N, T)
            loss = -tf.reduce_sum(advantage[:, None] * log_probs * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
            scaled = self.optimizer.scale_loss(loss / tf.distribute.get_strategy().num_replicas_in_sync)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {
            "loss": loss,
            "reward": tf.reduce_mean(rewards),
            "words": tf.reduce_sum(mask) / tf.cast(tf.shape(mask)[0], tf.float32),
        }
