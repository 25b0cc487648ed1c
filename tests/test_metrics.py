"""COCO caption metrics on a toy example (pycocoevalcap; METEOR and PTB tokenisation need Java)."""

import shutil

import pytest

from edgecap.evaluation import cider_d, coco_caption_scores
from edgecap.evaluation.metrics import bleu4

REFS = {
    "1": ["a dog runs on the grass", "a brown dog running across a field", "the dog is running outside"],
    "2": ["a man rides a bike down the street", "a person cycling on a road", "a man on a bicycle"],
    "3": ["two children play in the sand", "kids playing on a beach", "two kids dig in the sand"],
}
GOOD = {"1": "a dog runs on the grass", "2": "a man rides a bike down the street", "3": "two children play in the sand"}
BAD = {"1": "a plate of food", "2": "a cat sleeps on a sofa", "3": "a red car parked"}


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR and the PTB tokenizer need Java")
def test_all_metrics_rank_a_good_caption_set_above_a_bad_one():
    good, bad = coco_caption_scores(REFS, GOOD), coco_caption_scores(REFS, BAD)
    assert set(good) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"}
    assert good["BLEU-1"] == pytest.approx(100.0, abs=0.01)  # each hypothesis is one of its references
    for name in good:
        assert good[name] > bad[name], name
    assert bad["BLEU-4"] < 1.0


def test_cider_d_without_java():
    assert cider_d(REFS, GOOD) > cider_d(REFS, BAD) >= 0.0


def test_bleu4_without_java():
    assert bleu4(REFS, GOOD) == pytest.approx(100.0, abs=0.01)  # each hypothesis is one of its references
    assert bleu4(REFS, BAD) < 1.0


def test_hypothesis_without_references_is_an_error():
    with pytest.raises(ValueError, match="no references"):
        cider_d(REFS, {"9": "a dog"})
