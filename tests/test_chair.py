"""CHAIR (Rohrbach et al. 2018): the objects a caption names, and the hallucination rates of
captions against the objects their references name."""

import pytest

from edgecap.data.readers import read_caption_folder
from edgecap.evaluation.chair import SYNONYMS, chair, objects, reference_objects

from conftest import SHARED

COCO_DEV = SHARED / "data" / "coco_dev"


def test_a_caption_names_categories_through_synonyms_plurals_and_phrases():
    assert objects("Two men ride bikes past a hot dog stand") == ["person", "bicycle", "hot dog"]
    assert objects("a baby elephant beside a teddy bear") == ["elephant", "teddy bear"]  # no person, no bear
    assert objects("A man in an orange shirt eats an orange .") == ["person", "orange"]  # the fruit, not the colour
    assert objects("a roll of toilet paper and a bus driver") == ["person"]  # modifiers name nothing
    assert objects("a dog chases a dog") == ["dog"]  # a category once per caption
    assert objects("") == [] and objects("a sunny day") == []


def test_the_word_lists_cover_the_80_coco_categories_without_a_word_in_two():
    assert len(SYNONYMS) == 80
    words = [w for names in SYNONYMS.values() for w in names]
    assert len(words) == len(set(words))


def test_hallucinated_objects_are_counted_per_caption_and_per_mention():
    refs = {"a": ["A cat on a couch .", "a kitten sleeps on a sofa"], "b": ["a plate of broccoli", "broccoli and rice"]}
    scores = chair(refs, {"a": "a cat and a dog on a couch", "b": "a man eating broccoli"})
    assert scores.chair_s == 100.0  # both captions name something absent
    assert scores.chair_i == pytest.approx(
        100.0 * 2 / 5
    )  # dog and person of 5 mentions: cat, dog, couch; person, broccoli
    assert scores.most_hallucinated() == [("dog", 1, 1), ("person", 1, 1)]
    assert chair(refs, {"a": "a kitten on a sofa", "b": "some rice"}).chair_s == 0.0
    with pytest.raises(ValueError, match="no references"):
        chair(refs, {"c": "a dog"})
    with pytest.raises(ValueError, match="no hypotheses"):
        chair(refs, {})


@pytest.mark.skipif(not COCO_DEV.is_dir(), reason="needs ../shared/data/coco_dev")
def test_on_coco_dev_a_reference_never_hallucinates_and_a_swapped_object_always_does():
    items = read_caption_folder(COCO_DEV, ("dev",))["dev"][:40]
    refs = {it.image_id: it.captions for it in items}
    own = chair(refs, {it.image_id: it.captions[0] for it in items})
    assert own.chair_s == 0.0 and own.mentions > 0
    # a zebra where no reference names one: every such caption hallucinates
    absent = [it for it in items if "zebra" not in reference_objects(it.captions)]
    swapped = chair(refs, {it.image_id: it.captions[0] + " and a zebra" for it in absent})
    assert swapped.chair_s == 100.0 and swapped.hallucinated["zebra"] == len(absent)
