"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, optional SPICE) via pycocoevalcap.

Scores are returned ×100, the way papers report them. The PTB tokenizer and METEOR need Java
(``java`` on PATH); :func:`cider_d` alone needs no Java and is used for model selection.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence

from edgecap.runtime.vocabulary import tokenize


class MetricsError(RuntimeError):
    """A metric could not be computed (missing package or Java); the message says which."""


def _require_pycocoevalcap():
    try:
        import pycocoevalcap  # noqa: F401
    except ImportError as e:
        raise MetricsError("the caption metrics need pycocoevalcap: pip install 'edgecap[eval]'") from e


def _check(references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str]) -> None:
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    missing = [k for k in hypotheses if k not in references or not references[k]]
    if missing:
        raise ValueError(f"{len(missing)} hypothesis id(s) have no references, e.g. {missing[0]!r}")


def _simply_tokenized(references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str]) -> tuple[dict, dict]:
    _require_pycocoevalcap()
    _check(references, hypotheses)
    gts = {k: [" ".join(tokenize(r)) for r in references[k]] for k in hypotheses}
    res = {k: [" ".join(tokenize(v))] for k, v in hypotheses.items()}
    return gts, res


def cider_d(references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str]) -> float:
    """CIDEr-D ×100 (Vedantam et al. 2015; pycocoevalcap's ``Cider`` is the CIDEr-D variant).

    Text is tokenised with :func:`edgecap.runtime.vocabulary.tokenize` (no Java needed).

    Raises:
        ValueError: no hypotheses, or a hypothesis without references.
    """
    from pycocoevalcap.cider.cider import Cider

    score, _ = Cider().compute_score(*_simply_tokenized(references, hypotheses))
    return 100.0 * float(score)


def bleu4(references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str]) -> float:
    """Corpus BLEU-4 ×100 (Papineni et al. 2002, pycocoevalcap's ``Bleu``), tokenised as :func:`cider_d`.

    Raises:
        ValueError: no hypotheses, or a hypothesis without references.
    """
    from pycocoevalcap.bleu.bleu import Bleu

    score, _ = Bleu(4).compute_score(*_simply_tokenized(references, hypotheses), verbose=0)
    return 100.0 * float(score[3])


def coco_caption_scores(
    references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str], spice: bool = False
) -> dict[str, float]:
    """All COCO caption metrics ×100, after PTB tokenisation (as the COCO evaluation server).

    Args:
        references: image id → human captions.
        hypotheses: image id → one generated caption.
        spice: also compute SPICE (needs Java and a Stanford CoreNLP download; fails offline).

    Returns:
        ``{"BLEU-1".."BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"[, "SPICE"]}``.

    Raises:
        ValueError: no hypotheses, or a hypothesis without references.
        MetricsError: pycocoevalcap or Java missing.
    """
    _require_pycocoevalcap()
    if shutil.which("java") is None:
        raise MetricsError("METEOR and the PTB tokenizer need Java 8+ on PATH (apt-get install default-jre-headless)")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    _check(references, hypotheses)
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": r} for r in references[k]] for k in hypotheses})
    res = tok.tokenize({k: [{"caption": v}] for k, v in hypotheses.items()})
    out: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n, b in enumerate(bleu, 1):
        out[f"BLEU-{n}"] = 100.0 * b
    out["METEOR"] = 100.0 * Meteor().compute_score(gts, res)[0]  # the Java process ends with the object
    out["ROUGE-L"] = 100.0 * Rouge().compute_score(gts, res)[0]
    out["CIDEr-D"] = 100.0 * Cider().compute_score(gts, res)[0]
    if spice:
        from pycocoevalcap.spice.spice import Spice

        out["SPICE"] = 100.0 * Spice().compute_score(gts, res)[0]
    return out
