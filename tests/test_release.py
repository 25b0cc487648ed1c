"""``edgecap release``'s pieces that need no full release run."""

import shutil

import numpy as np


def test_the_compressed_checkpoint_loads_the_same_weights_in_a_smaller_file(tiny_run, tmp_path):
    from edgecap.release import compress_weights
    from edgecap.runs import BEST, CONFIG, VOCAB, load_run

    copy = tmp_path / "run"
    copy.mkdir()
    for file in (CONFIG, VOCAB):
        shutil.copy(tiny_run / file, copy / file)
    compress_weights(tiny_run / BEST, copy / BEST)
    assert (copy / BEST).stat().st_size < (tiny_run / BEST).stat().st_size
    (_, _, ours), (_, _, theirs) = load_run(copy), load_run(tiny_run)
    assert len(ours.weights) == len(theirs.weights) > 10
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def _shipped_cards():
    from edgecap.paths import released_dir

    return sorted(released_dir().glob("*.card.json"))


def test_the_shipped_cards_render_again_to_the_shipped_markdown():
    """Each built-in model's card JSON, rendered by today's code, gives its ``.md`` byte for
    byte: what a card says of a model comes from the family's config (``card_*`` methods),
    and moving it there changed no card."""
    import json

    from edgecap.release import render_card

    cards = _shipped_cards()
    assert len(cards) >= 4, cards
    for path in cards:
        card = json.loads(path.read_text())
        assert render_card(card) == path.with_name(path.name.replace(".card.json", ".md")).read_text(), path


def test_a_card_names_the_family_and_encoder_from_the_config_alone():
    """A family that says nothing of itself still gets a true card (its name and encoder), not
    another family's text; the encoder sentence follows ``encoder_weights``; an unknown
    architecture is refused by name."""
    import pytest

    from edgecap.models.model_config import ModelConfig
    from edgecap.models.registry import _REGISTRY
    from edgecap.release import card_model_config

    new = ModelConfig(architecture="new_family")
    assert new.card_title() == "`new_family`" and "MobileNetV2 (ImageNet weights, frozen)" in new.card_architecture()
    assert new.card_training() == "teacher-forced cross-entropy" and new.card_paper() == ""
    titles = {
        name: card_model_config({"architecture": name}).card_title()
        for name, a in _REGISTRY.items()
        if a.task != "attributes"
    }
    assert len(set(titles.values())) == len(titles), titles
    semantic = card_model_config({"architecture": "semantic_attention", "a_removed_field": 1})
    assert "the built-in captioner's encoder" in semantic.card_architecture()
    tuned = card_model_config(
        {"architecture": "show_attend_tell", "encoder_weights": "w.weights.h5", "fine_tune_from": "block_16_expand"}
    )
    assert "frozen up to `block_16_expand`" in tuned.card_architecture()
    assert "REINFORCE" in card_model_config({"attention": "hard"}).card_training()
    with pytest.raises(ValueError, match="unknown model architecture 'nope'"):
        card_model_config({"architecture": "nope"})
