"""Numerical check of an exported file against the Keras model it came from.

On N real images both models (1) read the same caption with teacher forcing, comparing
log-probabilities step by step, and (2) caption greedily, comparing the words chosen and the
corpus BLEU-4 of the two caption sets. A weightless or broken export fails loudly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from edgecap.decoding import greedy_search
from edgecap.runtime.captioner import Captioner
from edgecap.runtime.preprocessing import load_image


@dataclass(frozen=True)
class Tolerance:
    """Limits for one export mode.

    Attributes:
        logprob_max: max |Δ log-prob| over the Keras top-10 words of every step.
        logprob_mean: mean of the same.
        token_agreement: least share of greedy word positions chosen alike.
        bleu4: largest |Δ BLEU-4| (×100) between the two greedy caption sets.
    """

    logprob_max: float
    logprob_mean: float
    token_agreement: float
    bleu4: float


#: Float modes must match closely; quantized modes are judged on the mean error and the
#: captions (a weightless or broken export scores near 0 agreement whatever the mode).
TOLERANCES: dict[str, Tolerance] = {
    "float32": Tolerance(1e-3, 1e-4, 0.99, 0.5),
    "float16": Tolerance(0.5, 2e-2, 0.90, 2.0),
    "dynamic": Tolerance(float("inf"), 0.2, 0.70, 4.0),
    "int8": Tolerance(float("inf"), 0.3, 0.50, 4.0),
}


@dataclass
class VerifyReport:
    """Agreement between an exported file and Keras.

    Attributes:
        mode: quantization mode checked.
        images: number of images.
        encode_max_abs: max |Δ| over every state and memory tensor ``encode`` returns (memory
            with one row per item: over the rows of the items both models picked, matched by
            word, so a reordering of the same items is no error).
        encode_rel_mean: mean over those tensors of mean |Δ| / mean |Keras value|.
        logprob_max_abs: max |Δ log-prob| over the Keras top-10 words, all steps.
        logprob_mean_abs: mean of the same.
        token_agreement: share of greedy word positions where both chose the same word.
        exact_match: share of images whose greedy captions are identical.
        bleu4_keras, bleu4_tflite: corpus BLEU-4 ×100 of each greedy caption set.
        passed: within :data:`TOLERANCES` for ``mode``.
        items_overlap: when the contract declares items (semantic attention's top-k
            attributes, selected inside ``encode``): mean share of the Keras model's k words
            that the file selects too; None otherwise.
        items_identical: share of images whose k words are the same, in the same order.
    """

    mode: str
    images: int
    encode_max_abs: float
    encode_rel_mean: float
    logprob_max_abs: float
    logprob_mean_abs: float
    token_agreement: float
    exact_match: float
    bleu4_keras: float
    bleu4_tflite: float
    passed: bool
    items_overlap: float | None = None
    items_identical: float | None = None

    @property
    def bleu4_diff(self) -> float:
        return self.bleu4_tflite - self.bleu4_keras

    def as_dict(self) -> dict:
        return {**asdict(self), "bleu4_diff": self.bleu4_diff}

    def summary(self) -> str:
        return (
            f"{self.mode}: {'PASSED' if self.passed else 'FAILED'} on {self.images} images — encode max|Δ| {self.encode_max_abs:.2e} (relative mean {self.encode_rel_mean:.3f}), "
            f"log-prob max|Δ| {self.logprob_max_abs:.2e} (mean {self.logprob_mean_abs:.2e}), token agreement {self.token_agreement:.3f}, "
            f"identical captions {self.exact_match:.3f}, BLEU-4 Keras {self.bleu4_keras:.2f} vs file {self.bleu4_tflite:.2f} (Δ {self.bleu4_diff:+.2f})"
            + (
                ""
                if self.items_overlap is None
                else f", items overlap {self.items_overlap:.3f} (identical {self.items_identical:.3f})"
            )
        )


def _bleu4(references: Sequence[Sequence[str]], hypotheses: Sequence[str]) -> float:
    from pycocoevalcap.bleu.bleu import Bleu

    from edgecap.runtime.vocabulary import tokenize

    gts = {i: [" ".join(tokenize(r)) for r in refs] for i, refs in enumerate(references)}
    res = {i: [h if h else "a"] for i, h in enumerate(hypotheses)}
    return 100.0 * Bleu(4).compute_score(gts, res, verbose=0)[0][3]


def verify_export(
    model,
    captioner: Captioner,
    image_paths: Sequence,
    references: Sequence[Sequence[str]],
    mode: str,
    max_length: int = 20,
    tolerances: Mapping[str, Tolerance] = TOLERANCES,
    tags: Sequence[dict] | None = None,
) -> VerifyReport:
    """Compare ``captioner`` (the exported file) with ``model`` (Keras) on real images.

    Works from the step contract: every state and memory tensor of ``encode`` is compared,
    then both read the Keras greedy caption with teacher forcing (log-probabilities of the
    Keras top-10 words at each step) and caption greedily on their own.

    Args:
        model: the Keras captioner the file was exported from.
        captioner: the exported file loaded with :class:`edgecap.runtime.Captioner`.
        image_paths: N photos (not used for calibration).
        references: human captions per photo (for BLEU-4).
        mode: the export mode, selecting the tolerance.
        tags: per photo, a tag-conditioned model's tag tensors (``(1, K)`` each), given to both
            models; None: no tags.

    Returns:
        a :class:`VerifyReport`; ``passed`` is False outside the tolerance.
    """
    from edgecap.models.keras_step import KerasStep

    keras_step = KerasStep(model)
    encode = tf.function(model.encode)
    names = captioner.contract.state_names
    vocab = captioner.vocabulary
    m = captioner.metadata
    items = captioner.contract.items
    enc_err, enc_rel, lp_err, agree, total, exact = 0.0, [], [], 0, 0, 0
    overlap, identical = [], []
    hyps_keras, hyps_file = [], []
    for n, path in enumerate(image_paths):
        pixels = load_image(path, m.image_size)[None]
        photo_tags = tags[n] if tags else {}
        k_tensors = {**encode(pixels), **photo_tags}
        f_state, f_memory, f_items = captioner.encode_with_items(pixels)
        k_rows, f_rows = [], []  # rows of the items both picked: Keras order, and the file's
        if items is not None:
            k_words = [vocab[int(i)] for i in k_tensors[items.ids].numpy()[0]]
            f_words = [w for w, _ in f_items]
            overlap.append(len(set(k_words) & set(f_words)) / items.size)
            identical.append(k_words == f_words)
            k_rows = [i for i, w in enumerate(k_words) if w in f_words]
            f_rows = [f_words.index(k_words[i]) for i in k_rows]
        for name, f_value in {**dict(zip(names, f_state)), **f_memory}.items():  # what encode made
            k_value = k_tensors[name].numpy()
            if items is not None and name in items.rows:
                if not k_rows:
                    continue
                k_value, f_value = k_value[:, k_rows], f_value[:, f_rows]  # (1, shared items, ...)
            enc_err = max(enc_err, float(np.abs(k_value - f_value).max()))
            enc_rel.append(float(np.abs(k_value - f_value).mean() / max(np.abs(k_value).mean(), 1e-12)))
        f_memory = {**f_memory, **captioner.tag_memory(None), **photo_tags}  # the tags: given, or none
        k_state, k_step = keras_step.bind(k_tensors)
        k_hyp = greedy_search(k_step, k_state, m.start_id, m.end_id, max_length, captioner.suppress)[0]
        f_hyp = captioner.search(f_state, f_memory, beam_size=1)[0]
        # Teacher-forced log-probabilities along the Keras caption.
        f_step = captioner.step_function(f_memory, attention=False)
        ks, fs = k_state, f_state
        for token in [m.start_id] + k_hyp.tokens:
            tok = np.array([token], np.int32)
            k_lp, ks, _ = k_step(tok, ks)
            f_lp, fs, _ = f_step(tok, fs)
            top = np.argsort(-k_lp[0])[:10]
            lp_err.append(np.abs(k_lp[0, top] - f_lp[0, top]))
        n = len(k_hyp.tokens)
        agree += sum(a == b for a, b in zip(k_hyp.tokens, f_hyp.tokens))
        total += max(n, len(f_hyp.tokens))
        exact += k_hyp.tokens == f_hyp.tokens
        hyps_keras.append(" ".join(vocab[i] for i in k_hyp.tokens))
        hyps_file.append(" ".join(vocab[i] for i in f_hyp.tokens))
    errs = np.concatenate(lp_err)
    b_k, b_f = _bleu4(references, hyps_keras), _bleu4(references, hyps_file)
    tol = tolerances[mode]
    agreement = agree / max(total, 1)
    passed = (
        float(errs.max()) <= tol.logprob_max
        and float(errs.mean()) <= tol.logprob_mean
        and agreement >= tol.token_agreement
        and abs(b_f - b_k) <= tol.bleu4
    )
    items_stats = (float(np.mean(overlap)), float(np.mean(identical))) if items is not None else (None, None)
    return VerifyReport(
        mode,
        len(image_paths),
        enc_err,
        float(np.mean(enc_rel)),
        float(errs.max()),
        float(errs.mean()),
        agreement,
        exact / len(image_paths),
        b_k,
        b_f,
        passed,
        *items_stats,
    )
