"""Tag inputs of a tag-conditioned captioner: the contract's declaration, the runtime's slots,
the training photos' cached tags and the text's pseudo-tags, the training data, and the
default options that run the default pipeline."""

import numpy as np
import pytest

from edgecap.data.readers import CaptionedImage
from edgecap.data.tags import measure_tag_rates, pseudo_tags, tag_arrays
from edgecap.runtime import CaptionerOptions
from edgecap.runtime.contract import ContractError, StepContract, TagsDecl, TensorDecl
from edgecap.runtime.guidance import DEFAULT_TAGGERS
from edgecap.runtime.tag_inputs import tag_input_rows
from edgecap.runtime.tagger import Tag

WORDS = ["<pad>", "<start>", "<end>", "<unk>", "a", "cat", "dog", "person", "cup", "table"]
INDEX = {w: i for i, w in enumerate(WORDS)}
DECL = TagsDecl("tag_ids", "tag_scores", 3, 0.3, "coco_detector")


def _tag(word, score, forms=None, source="coco_detector"):
    return Tag(word, score, source, word, tuple(forms if forms is not None else (word,)))


def test_slots_hold_the_best_tags_the_vocabulary_has_at_the_declared_score():
    tags = [
        _tag("table", 0.4, ("table", "tables")),
        _tag("person", 0.8, ()),  # no forms: still an input
        _tag("giraffe", 0.9),  # not in the vocabulary
        _tag("cup", 0.2),  # under min_score
        _tag("cat", 0.4),
        _tag("dog", 0.95, source="imagenet_classifier"),  # another tagger's
    ]
    ids, scores = tag_input_rows(tags, DECL, INDEX)
    assert ids.tolist() == [INDEX["person"], INDEX["cat"], INDEX["table"]]  # ties by word
    assert scores.tolist() == pytest.approx([0.8, 0.4, 0.4])
    ids, scores = tag_input_rows([], DECL, INDEX)
    assert ids.tolist() == [0, 0, 0] and scores.tolist() == [0, 0, 0]
    ids, _ = tag_input_rows([("cat", 0.5), ("cat", 0.9), ("<end>", 0.9)], DECL, INDEX)  # pairs; specials never
    assert ids.tolist() == [INDEX["cat"], 0, 0]
    with pytest.raises(ValueError, match="score"):
        tag_input_rows([("cat", 1.5)], DECL, INDEX)


def test_the_contract_declares_tags_as_memory_that_encode_does_not_make():
    tensors = (
        TensorDecl("h", (4,), "state"),
        TensorDecl("f", (2, 3), "memory"),
        TensorDecl("tag_ids", (3,), "memory", "int32"),
        TensorDecl("tag_scores", (3,), "memory"),
    )
    contract = StepContract(tensors, tags=DECL)
    assert contract.encode_names == ("h", "f") and contract.encoded_memory_names == ("f",)
    assert StepContract.from_dict(contract.to_dict()) == contract
    step_inputs = {"tokens": [-1], "h": [-1, 4], "f": [1, 2, 3], "tag_ids": [1, 3], "tag_scores": [1, 3]}
    contract.check_signatures({"h": [1, 4], "f": [1, 2, 3]}, step_inputs, {"log_probs": [-1, 9], "h": [-1, 4]})
    with pytest.raises(ContractError, match="tag_scores"):  # the step must take them
        contract.check_signatures(
            {"h": [1, 4], "f": [1, 2, 3]},
            {k: v for k, v in step_inputs.items() if k != "tag_scores"},
            {"log_probs": [-1, 9], "h": [-1, 4]},
        )
    with pytest.raises(ContractError, match="dtype int32"):
        StepContract((*tensors[:2], TensorDecl("tag_ids", (3,), "memory"), tensors[3]), tags=DECL)
    with pytest.raises(ContractError, match="min_score"):
        TagsDecl("a", "b", 2, 1.5)
    with pytest.raises(ContractError, match="malformed"):
        StepContract.from_dict({**contract.to_dict(), "tags": {"ids": "tag_ids", "scores": "tag_scores", "size": "x"}})


def test_pseudo_tags_follow_the_rates_measured_on_captioned_photos():
    """Rates from photos: the detector keeps "cat" where the references name one, adds "dog"
    where none does; sentences then get tags at those rates, scores drawn from the real ones."""
    items = [CaptionedImage(str(i), None, ["a cat on a bed"] if i < 10 else ["a table"]) for i in range(20)]
    tags = [[("cat", 0.9)] if i < 8 else ([("dog", 0.35)] if i >= 15 else []) for i in range(20)]
    categories = {"cat": "cat", "dog": "dog", "dining table": "table"}
    rates = measure_tag_rates(items, tags, categories, 0.3)
    assert rates.keep["cat"] > 0.7 and rates.keep["table"] < 0.3 and rates.add["dog"] > 0.2 and rates.add["cat"] < 0.1
    assert rates.true_scores == [0.9] * 8 and rates.false_scores == [0.35] * 5
    sentences = ["a cat sleeps"] * 400 + ["a table"] * 400
    drawn = pseudo_tags(sentences, rates, categories, seed=0)
    assert drawn == pseudo_tags(sentences, rates, categories, seed=0)  # one draw per seed
    cats = np.mean([any(w == "cat" for w, _ in d) for d in drawn[:400]])
    assert abs(cats - rates.keep["cat"]) < 0.06
    assert all(s == 0.9 for d in drawn[:400] for w, s in d if w == "cat")
    dogs = np.mean([any(w == "dog" for w, _ in d) for d in drawn[400:]])
    assert abs(dogs - rates.add["dog"]) < 0.06
    arrays = tag_arrays(drawn[:2], DECL, INDEX)
    assert arrays["tag_ids"].shape == (2, 3) and arrays["tag_scores"].dtype == np.float32


def test_tags_and_photos_seen_through_tags_alone_reach_the_training_batches():
    from edgecap.data.pipeline import caption_dataset

    features = np.ones((4, 5, 3), np.float16)
    index = np.arange(4, dtype=np.int32).repeat(2)
    captions = np.tile(np.array([[1, 4, 5, 2]], np.int32), (8, 1))
    tags = {"tag_ids": np.arange(4, dtype=np.int32)[:, None].repeat(3, 1), "tag_scores": np.ones((4, 3), np.float32)}
    batches = caption_dataset(features, index, captions, 8, shuffle=False, tags=tags, annotation_dropout=0.5)
    inputs, _ = next(iter(batches))
    assert inputs["tag_ids"].numpy()[:, 0].tolist() == index.tolist()  # each caption with its photo's tags
    zeroed = (inputs["annotations"].numpy().reshape(8, -1).max(axis=1) == 0).sum()
    assert 0 < zeroed < 8  # some photos dropped, tags kept
    with pytest.raises(ValueError, match="one row per photo"):
        caption_dataset(features, index, captions, 8, tags={"tag_ids": tags["tag_ids"][:2]})
    with pytest.raises(ValueError, match="annotation_dropout"):
        caption_dataset(features, index, captions, 8, tags=tags, annotation_dropout=1.0)


def test_default_options_run_the_default_pipeline_and_an_empty_tuple_opts_out():
    assert CaptionerOptions().taggers == DEFAULT_TAGGERS == ("coco_detector",)
    assert CaptionerOptions(taggers=()).taggers == ()


def test_rule_7_takes_nats_from_the_words_of_what_the_detector_did_not_see():
    from edgecap.decoding import PenalizeTokens
    from edgecap.runtime.guidance import ConstraintOptions, untagged_words

    index = {**INDEX, "man": 10, "dogs": 11, "tables": 12}
    seen = [
        Tag("cat", 0.8, "coco_detector", "cat", ("cat", "cats")),
        Tag("table", 0.4, "coco_detector", "dining table", ("table", "tables")),
        Tag("person", 0.2, "coco_detector", "person", ()),  # below untagged_below: not seen
    ]
    options = ConstraintOptions(untagged_penalty=5.0, untagged_below=0.3)
    guard = untagged_words(seen, index, options)
    assert sorted(guard.ids.tolist()) == sorted([index[w] for w in ("dog", "dogs", "person", "man", "cup")])
    log_probs = np.zeros((2, len(index)), np.float32)
    out = guard(log_probs, np.zeros((2, 1), np.int32))
    assert out[0, index["dog"]] == -5.0 and out[1, index["cat"]] == 0.0 and out[0, index["tables"]] == 0.0
    assert untagged_words(seen, index, ConstraintOptions(untagged_penalty=0.0)) is None  # off
    assert untagged_words([], index, options) is None  # no detector tags: nothing is known
    assert untagged_words([_tag("dog", 0.9, source="imagenet_classifier")], index, options) is None
    with pytest.raises(ValueError, match="penalty"):
        PenalizeTokens([1], 0.0)
    with pytest.raises(ValueError, match="untagged_penalty"):
        ConstraintOptions(untagged_penalty=-1.0)


def test_photos_seen_through_tags_alone_need_a_model_that_reads_tags():
    from edgecap.config import Config, ConfigError

    cfg = Config()
    cfg.train.annotation_dropout = 0.1
    with pytest.raises(ConfigError, match="annotation_dropout"):
        cfg.validate()
    cfg.model.tag_slots = 4
    assert cfg.validate() is cfg
