"""Semantic attention's attribute vocabulary and detector: the formulas against loops, and the
detector learning on real photos."""

import json
import warnings

import numpy as np
import pytest

from conftest import HAVE_SHARED, tiny_config
from edgecap.evaluation.attributes import attribute_scores, frequency_baseline
from edgecap.models.semantic_attention.attributes import AttributeVocabulary, AttributeVocabularyError
from edgecap.models.semantic_attention.config import AttributeDetectorConfig


def test_attributes_are_frequent_content_words_and_label_each_image(tmp_path):
    captions = [["A dog runs on the grass .", "The brown dog is running"], ["A man rides a bike on the road", "a man cycling"], ["Two dogs and a dog play in the snow"]]
    vocab = AttributeVocabulary.from_captions(captions, 4)
    assert vocab.words == ("dog", "bike", "brown", "cycling")  # "dog" in 2 photos; "a", "the", "on", "two" are stop words; ties alphabetical
    np.testing.assert_array_equal(vocab.labels(captions), [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0]])
    vocab.save(tmp_path / "attributes.json")
    assert AttributeVocabulary.load(tmp_path / "attributes.json", 4) == vocab
    with pytest.raises(AttributeVocabularyError, match="4 attributes, but the model has 8"):
        AttributeVocabulary.load(tmp_path / "attributes.json", 8)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(AttributeVocabularyError, match="bad.json: not an attribute vocabulary"):
        AttributeVocabulary.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="fewer than the 99"):
        AttributeVocabulary.from_captions(captions, 99)


def test_noisy_or_loss_is_the_likelihood_of_the_weak_labels():
    import keras

    from edgecap.models.semantic_attention.detector import noisy_or_evidence, noisy_or_loss

    z = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)  # (B, L, A)
    labels = np.array([[1, 0, 0, 1], [0, 1, 1, 0]], np.float32)
    p = 1.0 - np.prod(1.0 - 1.0 / (1.0 + np.exp(-z)), axis=1)  # Fang et al. eq. 1
    by_hand = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    evidence = noisy_or_evidence(keras.ops.convert_to_tensor(z))
    np.testing.assert_allclose(1.0 - np.exp(-np.asarray(evidence)), p, rtol=1e-5)
    assert float(noisy_or_loss(evidence, labels)) == pytest.approx(by_hand, rel=1e-5)


def test_attribute_scores_on_a_toy_set():
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1], [0.3, 0.7, 0.0]])
    m = attribute_scores(scores, labels, k=1)
    # attribute 0: images ranked 0 (pos), 2 (pos) → AP 1; attribute 1: 1 (pos), 2 (pos) → AP 1; attribute 2 has no positive
    assert m == {"mAP": 100.0, "P@1": 100.0, "R@1": pytest.approx(100 * (1 + 1 + 0.5) / 3), "attributes_scored": 2}
    baseline = attribute_scores(frequency_baseline(labels, 3), labels, k=1)
    assert baseline["P@1"] == pytest.approx(100 * 2 / 3)  # always attribute 0 (ties: the lower id)
    with pytest.raises(ValueError, match="k must be"):
        attribute_scores(scores, labels, k=4)


@pytest.fixture(scope="module")
def detector_run(tmp_path_factory):
    """A detector trained a few epochs: on 600 Flickr8k photos with ../shared, else on examples/."""
    from edgecap.training.attributes import train

    run = tmp_path_factory.mktemp("detector_run")
    cfg = tiny_config(run, HAVE_SHARED, epochs=4, learning_rate=2e-3)
    if HAVE_SHARED:
        cfg.data.train_limit, cfg.data.dev_limit, cfg.train.batch_size = 600, 200, 32
    cfg.model = AttributeDetectorConfig(encoder_weights=cfg.model.encoder_weights, num_attributes=64 if HAVE_SHARED else 8, hidden_dim=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, run)
    return run


def test_the_detector_learns(detector_run):
    history = json.loads((detector_run / "state.json").read_text())["history"]
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    assert len(AttributeVocabulary.load(detector_run / "attributes.json").words) == (64 if HAVE_SHARED else 8)
    assert "P@10" in history[-1] if HAVE_SHARED else "P@8" in history[-1]  # 10, or every attribute of a smaller vocabulary


@pytest.mark.skipif(not HAVE_SHARED, reason="needs ../shared: 12 photos of 3 scenes cannot tell a detector from word frequency")
def test_the_detector_beats_the_most_frequent_attributes(detector_run):
    from edgecap.evaluation.evaluate import evaluate_attributes

    report = evaluate_attributes(detector_run, "dev")
    assert report["images"] == 200 and report["attributes"] == 64
    assert report["metrics"]["P@10"] > report["frequency_baseline"]["P@10"]
    assert report["metrics"]["mAP"] > report["frequency_baseline"]["mAP"]
