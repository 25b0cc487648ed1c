"""The built-in taggers, their word mappings, the constraint rules and the tags on the CLI."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgecap.decoding.search import Hypothesis
from edgecap.runtime import Captioner, CaptionerOptions, ModelFileError
from edgecap.runtime.guidance import ConstraintOptions, choose_constraints, keep_constrained
from edgecap.runtime.presets import preset_path, tagger_names, tagger_path
from edgecap.runtime.tagger import Tag, Tagger, TaggerOptions, read_tag_words

from conftest import SHARED


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgecap.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def classifier():
    return Tagger.from_preset("imagenet_classifier")


@pytest.fixture(scope="module")
def detector():
    return Tagger.from_preset("coco_detector")


def test_both_taggers_are_built_in_with_a_card():
    assert tagger_names() == ["coco_detector", "imagenet_classifier"]
    for name in tagger_names():
        card = tagger_path(name).with_suffix(".md").read_text()
        assert "sha256" in card and "Apache" in card and "not good at" in card.lower()
    out = _cli("models")
    assert out.returncode == 0 and "coco_detector" in out.stdout and "tagging" in out.stdout


def test_the_mappings_name_caption_words():
    d = tagger_path("imagenet_classifier")
    words = read_tag_words(d.with_suffix(".words.json"), d.with_suffix(".labels.txt"))
    by_label = {label.split(",")[0]: w for label, w in zip(words.labels, words.words)}
    assert by_label["Egyptian cat"][0] == "cat" and by_label["tabby"][0] == "cat"
    assert by_label["golden retriever"][:2] == ("dog", "dogs")
    assert by_label["background"] == ()
    d = tagger_path("coco_detector")
    words = read_tag_words(d.with_suffix(".words.json"), d.with_suffix(".labels.txt"))
    by_label = dict(zip(words.labels, words.words))
    assert by_label["dining table"] == ("table", "tables") and by_label["person"] == ()
    assert words.label_offset == 1 and "knives" in by_label["knife"]


def test_the_built_in_taggers_on_the_example_photos(classifier, detector, examples):
    cat = examples / "chelsea.jpg"
    assert classifier.tag(cat)[0].word == "cat" and classifier.tag(cat)[0].box is None
    top = detector.tag(cat)[0]
    assert top.word == "cat" and top.source == "coco_detector" and top.label == "cat"
    ymin, xmin, ymax, xmax = top.box
    assert 0 <= ymin < ymax <= 1 and 0 <= xmin < xmax <= 1
    assert classifier.tag(examples / "coffee.jpg")[0].word == "coffee"
    assert "cup" in [t.word for t in detector.tag(examples / "coffee.jpg")]


def test_threshold_max_results_and_category_lists(examples):
    photo = examples / "coffee.jpg"
    every = Tagger.from_preset("coco_detector", TaggerOptions(max_results=-1)).tag(photo)
    assert len(every) >= 3 and [t.score for t in every] == sorted((t.score for t in every), reverse=True)
    cut = every[1].score
    above = Tagger.from_preset("coco_detector", TaggerOptions(score_threshold=cut, max_results=-1)).tag(photo)
    assert all(t.score >= cut for t in above) and len(above) < len(every)
    assert len(Tagger.from_preset("coco_detector", TaggerOptions(max_results=1)).tag(photo)) == 1
    denied = Tagger.from_preset("coco_detector", TaggerOptions(category_denylist=("cup",), max_results=-1)).tag(photo)
    assert "cup" not in [t.word for t in denied] and len(denied) == len(every) - 1
    allowed = Tagger.from_preset("coco_detector", TaggerOptions(category_allowlist=("dining table",))).tag(photo)
    assert [t.word for t in allowed] == ["table"]  # by the tagger's label or by the word


@pytest.mark.parametrize(
    "kwargs",
    [dict(score_threshold=1.5), dict(max_results=0), dict(category_allowlist=("a",), category_denylist=("a",))],
)
def test_bad_tagger_options_raise(kwargs):
    with pytest.raises(ValueError):
        TaggerOptions(**kwargs)


def _copy_tagger(tmp_path, name="coco_detector") -> Path:
    src = tagger_path(name)
    for suffix in (".tflite", ".labels.txt", ".words.json"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"t{suffix}")
    return tmp_path / "t.tflite"


def test_bad_tagger_files_are_one_error_naming_the_file(tmp_path):
    path = _copy_tagger(tmp_path)
    labels = path.with_suffix(".labels.txt")
    labels.write_text("\n".join(labels.read_text().splitlines()[:-1]) + "\n")  # one label short
    with pytest.raises(ModelFileError, match="t.words.json.*maps 91 labels.*has 90"):
        Tagger.create_from_model_path(path)
    path = _copy_tagger(tmp_path)
    words = json.loads(path.with_suffix(".words.json").read_text())
    words["labels"][18]["words"] = ["hot dog"]  # two words cannot be one constraint
    path.with_suffix(".words.json").write_text(json.dumps(words))
    with pytest.raises(ModelFileError, match="t.words.json.*not lowercase one-word"):
        Tagger.create_from_model_path(path)
    path.with_suffix(".words.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="t.words.json: not a tag word mapping"):
        Tagger.create_from_model_path(path)
    # a detector's files declared as a classifier, and a captioner given as a tagger
    path = _copy_tagger(tmp_path)
    words = json.loads(path.with_suffix(".words.json").read_text())
    path.with_suffix(".words.json").write_text(json.dumps({**words, "kind": "classifier"}))
    with pytest.raises(ModelFileError, match="t.tflite: a classifier of 90 labels must have one"):
        Tagger.create_from_model_path(path)
    shutil.copy(preset_path("show_attend_tell_flickr8k"), path)
    path.with_suffix(".words.json").write_text(json.dumps(words))
    with pytest.raises(ModelFileError, match="t.tflite"):
        Tagger.create_from_model_path(path)


def _hostile(words: dict) -> dict[str, tuple[str, str]]:
    """Mappings a hostile or careless tagger file may hold → (the JSON text, the refusal's words)."""
    first = words["labels"][1]

    def with_entry(**entry) -> str:
        return json.dumps({**words, "labels": [words["labels"][0], {**first, **entry}, *words["labels"][2:]]})

    return {
        "deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        "nan": (json.dumps({**words, "label_offset": float("nan")}), "NaN is not a number"),
        "overflow": (json.dumps(words).replace('"label_offset": 1', '"label_offset": 1e999'), "'label_offset' must be"),
        "float-offset": (json.dumps({**words, "label_offset": 1.0}), "'label_offset' must be an integer"),
        "words-a-string": (with_entry(words="person"), r"labels\[1\].words must be a list"),
        "label-a-number": (with_entry(label=7), r"labels\[1\].label must be a string"),
        "word-a-number": (with_entry(words=[3]), r"labels\[1\].words must be a list"),
        "special-token": (with_entry(words=["<end>"]), "nor <special> ones"),
        "kind-a-list": (json.dumps({**words, "kind": ["detector"]}), "'kind' must be a string"),
        "not-an-object": (json.dumps(words["labels"]), "the mapping must be a JSON object"),
    }


@pytest.mark.parametrize(
    "case",
    ["deep", "nan", "overflow", "float-offset", "words-a-string", "label-a-number", "word-a-number",
     "special-token", "kind-a-list", "not-an-object"],
)  # fmt: skip
def test_hostile_word_mappings_are_refused_naming_the_file_and_field(tmp_path, case):
    """Issue 48, class 1: every field typed and bounded like the model's metadata; nothing
    converted (a string of words is not one tag per letter)."""
    path = _copy_tagger(tmp_path)
    text, expected = _hostile(json.loads(path.with_suffix(".words.json").read_text()))[case]
    path.with_suffix(".words.json").write_text(text)
    with pytest.raises(ModelFileError, match=rf"t.words.json: .*{expected}"):
        Tagger.create_from_model_path(path)


def test_a_special_token_is_never_a_tag_word():
    captioner = Captioner.from_preset("show_attend_tell_flickr8k", CaptionerOptions(taggers=()))
    assert not {"<pad>", "<start>", "<end>", "<unk>"} & set(captioner.word_index)
    assert "dog" in captioner.word_index


def _tag(word, score, forms=None):
    return Tag(word, score, "test", word, tuple(forms or (word, word + "s")))


def test_constraint_rules():
    index = {w: i for i, w in enumerate(["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "cat", "cats", "table"])}
    tags = [_tag("cat", 0.9), _tag("dog", 0.8), _tag("table", 0.7), _tag("giraffe", 0.95)]
    free = [4, 5]  # "a dog"
    options = ConstraintOptions(min_score=0.5, max_constraints=2, common_words=0)
    chosen = choose_constraints(tags, index, free, options)
    # giraffe is not in the vocabulary (skipped), dog is already said: cat (either form) and table
    assert [(t.word, ids) for t, ids in chosen] == [("cat", [6, 7]), ("table", [8])]
    assert [
        t.word for t, _ in choose_constraints(tags, index, free, ConstraintOptions(min_score=0.75, common_words=0))
    ] == ["cat"]
    assert choose_constraints(tags, index, free, ConstraintOptions(min_score=0.5, common_words=3)) == [
        (tags[2], [8])
    ]  # cat is among the 3 most frequent words
    assert [
        t.word
        for t, _ in choose_constraints(
            tags, index, free, ConstraintOptions(min_score=0.5, max_constraints=2, common_words=0, skip_said=False)
        )
    ] == [
        "cat",
        "dog",
    ]
    sure = ConstraintOptions(min_score=0.5, common_words=0, confident=-0.8)
    assert choose_constraints(tags, index, free, sure, free_per_word=-0.5) == []  # the captioner is sure
    assert [t.word for t, _ in choose_constraints(tags, index, free, sure, free_per_word=-0.9)] == ["cat"]
    free_h, forced = Hypothesis([4, 5], -2.0, -2.0), Hypothesis([4, 6, 5], -4.0, -4.0)  # -0.67 and -1.0 a word
    assert keep_constrained(free_h, forced, 0.4) and not keep_constrained(free_h, forced, 0.3)
    assert not keep_constrained(free_h, Hypothesis([4, 5], -2.0, -2.0, constraints_met=False), 10.0)


def test_the_default_pipeline_names_the_cat_and_the_coffee(examples):
    """The issue's check on the shipped photos: with the built-in tagger, the cat is a cat and the coffee a cup."""
    from edgecap.runtime.guidance import DEFAULT_TAGGERS

    captioner = Captioner.from_preset("show_attend_tell_flickr8k", CaptionerOptions(taggers=DEFAULT_TAGGERS))
    cat = captioner.caption(examples / "chelsea.jpg")
    assert "cat" in cat.tokens and cat.tags[0].word == "cat" and cat.constraints_met
    coffee = captioner.caption(examples / "coffee.jpg").tokens
    assert "cup" in coffee or "coffee" in coffee
    plain = Captioner.from_preset("show_attend_tell_flickr8k", CaptionerOptions(taggers=())).caption(
        examples / "chelsea.jpg"
    )
    assert "cat" not in plain.tokens and plain.tags == []  # what the taggers change


def test_cli_tags_in_json_lines_and_the_switches(examples):
    photo = str(examples / "chelsea.jpg")
    out = _cli("caption", photo, "--json")
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["tags"][0]["word"] == "cat" and len(rec["tags"][0]["box"]) == 4 and rec["constraints"] == ["cat"]
    assert "cat" in rec["caption"].split()
    free = json.loads(_cli("caption", photo, "--json", "--no-constrain").stdout)
    assert free["tags"] == rec["tags"] and free["constraints"] == []
    none = json.loads(_cli("caption", photo, "--json", "--tagger", "none").stdout)
    assert none["tags"] == [] and none["constraints"] == []
    # the default model reads the tags: --no-constrain still gives them to it, --tagger none does not
    for record, options in ((free, CaptionerOptions(constrain=False)), (none, CaptionerOptions(taggers=()))):
        assert record["caption"] == Captioner.from_preset("show_attend_tell_flickr8k", options).caption(photo).text
    text = _cli("caption", photo, "--tags", "--tagger", "imagenet_classifier")
    assert text.returncode == 0 and "tags: cat 1.00 (imagenet_classifier)" in text.stdout
    bad = _cli("caption", photo, "--tagger", "no_such_tagger")
    assert bad.returncode != 0 and "no_such_tagger" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("nltk") is None or not Path("/usr/share/wordnet/data.noun").is_file(),
    reason="needs nltk and Debian's wordnet-base",
)
@pytest.mark.skipif(not (SHARED / "data" / "caption_text").is_dir(), reason="needs ../shared/data/caption_text")
def test_the_mappings_are_what_the_script_makes(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [
            sys.executable,
            str(repo / "scripts" / "make_tag_words.py"),
            "--shared",
            str(SHARED),
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.returncode == 0, out.stderr
    for name in tagger_names():
        made = json.loads((tmp_path / f"{name}.words.json").read_text())
        assert made == json.loads(tagger_path(name).with_suffix(".words.json").read_text()), name
