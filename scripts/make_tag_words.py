"""Make the tag → caption-word mappings of the built-in taggers from WordNet and caption text.

For each label of a tagger (an ImageNet synset such as "tabby, tabby cat", a COCO name such as
"dining table") the mapping lists the caption words any of which names it (a disjunctive
constraint: ``cat, cats``). A label's word is found in WordNet 3.0 (Debian's ``wordnet-base``,
read with NLTK's WordNet reader): the label's synset and its hypernyms, nearest first, are
searched for a one-word lemma that people write in captions (counted in Flickr8k's training
captions and ``caption_text``): the nearest lemma written at least ``--common`` times, else the
most written one of at least ``--rare`` times, else none (the label is never a tag). The forms are
that lemma, the other lemmas of its synset written at least ``--rare`` times (couch → sofa), and
their plurals as captions write them (WordNet's irregular plurals, else -s/-es/-ies). The hand
corrections below override WordNet where its nearest common word is not what a caption says;
every one is listed in the output file and in the tagger's card.

Needs ``apt-get install wordnet-base`` and ``pip install nltk``; writes
``export/taggers/<name>.words.json``.

Usage: python scripts/make_tag_words.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import shutil
import tempfile
from pathlib import Path

WORDNET = Path("/usr/share/wordnet")
LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
# Synsets too general to name a photo's subject ("a device", "an organism"): never chosen.
TOO_GENERAL = {
    "entity.n.01", "physical_entity.n.01", "object.n.01", "whole.n.02", "artifact.n.01", "instrumentality.n.03",
    "device.n.01", "container.n.01", "structure.n.01", "organism.n.01", "living_thing.n.01", "animal.n.01",
    "chordate.n.01", "vertebrate.n.01", "mammal.n.01", "placental.n.01", "person.n.01", "causal_agent.n.01",
    "matter.n.03", "substance.n.07", "solid.n.01", "food.n.01", "food.n.02", "commodity.n.01", "equipment.n.01",
    "implement.n.01", "covering.n.02", "abstraction.n.06", "material.n.01", "part.n.02", "thing.n.12",
    "invertebrate.n.01", "plant.n.02", "vascular_plant.n.01", "system.n.01", "merchandise.n.01", "produce.n.01",
    "foodstuff.n.02", "nutriment.n.01", "dish.n.02", "vessel.n.03", "conveyance.n.03", "vehicle.n.01",
    "wheeled_vehicle.n.01", "self-propelled_vehicle.n.01", "craft.n.02", "game_equipment.n.01",
    "sports_equipment.n.01", "piece_of_cloth.n.01", "helping.n.01", "carnivore.n.01", "ungulate.n.01", "even-toed_ungulate.n.01", "ruminant.n.01",
    "protective_covering.n.01", "clothing.n.01", "garment.n.01", "consumer_goods.n.01", "instrument.n.01",
}  # fmt: skip
# Hand corrections, label → forms: two-word names (constraints are single words), and labels
# whose nearest common WordNet word is not what a caption calls the thing.
CORRECTIONS = {
    "detector": {
        "person": [],  # every Flickr8k photo has people and the captioners name them well: never a constraint
        "traffic light": ["traffic"],
        "fire hydrant": ["hydrant", "hydrants"],
        "stop sign": ["sign", "signs"],
        "parking meter": ["meter", "meters"],
        "sports ball": ["ball", "balls"],
        "baseball bat": ["bat", "bats"],
        "baseball glove": ["glove", "mitt"],
        "tennis racket": ["racket", "racquet", "rackets"],
        "wine glass": ["glass", "glasses", "wine"],
        "hot dog": ["hotdog", "hotdogs"],
        "potted plant": ["plant", "plants"],
        "dining table": ["table", "tables"],
        "tv": ["tv", "television", "tvs"],
        "cell phone": ["phone", "cellphone", "phones"],
        "teddy bear": ["teddy"],
        "hair drier": ["dryer", "drier"],
        "mouse": ["mouse"],  # the computer mouse: "mice" are animals in captions
        "remote": ["remote", "remotes"],
        "skis": ["skis", "ski"],
        "airplane": ["airplane", "plane", "jet", "airplanes", "planes"],
        "motorcycle": ["motorcycle", "motorbike", "motorcycles"],
        "bicycle": ["bicycle", "bike", "bicycles", "bikes"],
        "couch": ["couch", "sofa", "couches"],
        "donut": ["donut", "donuts", "doughnut", "doughnuts"],
        "toilet": ["toilet", "toilets"],
    },
    "classifier": {
        "cup": ["cup", "cups"],  # ImageNet's "cup" is a cup of drink, whose hypernym is "beverage"
        "espresso": ["coffee", "espresso"],
        "plate": ["plate", "plates"],  # a plate of food, hypernym "meat"
        "ear, spike, capitulum": ["corn"],
        "bath towel": ["towel", "towels"],
        "television, television system": ["television", "tv"],
        "traffic light, traffic signal, stoplight": ["traffic"],
    },
}
PLURAL_EXCEPTIONS = {"person": "people", "man": "men", "woman": "women", "child": "children"}


def lexnames_file(folder: Path) -> None:
    """NLTK's WordNet reader wants ``lexnames``, which Debian ships only as the lexnames(5WN) man page."""
    kinds = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
    lines = []
    for line in gzip.open(LEXNAMES_MAN, "rt"):
        m = re.match(r"^(\d\d)\s+((adj|adv|noun|verb)\.\S+)", line)
        if m:
            lines.append(f"{m.group(1)}\t{m.group(2)}\t{kinds[m.group(3)]}")
    if len(lines) != 45:
        raise SystemExit(f"{LEXNAMES_MAN}: expected 45 lexicographer files, read {len(lines)}")
    (folder / "lexnames").write_text("\n".join(lines) + "\n")


def open_wordnet():
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    if not (WORDNET / "data.noun").is_file():
        raise SystemExit(f"{WORDNET}: no WordNet database; apt-get install wordnet-base")
    folder = Path(tempfile.mkdtemp(prefix="wordnet-"))
    for f in WORDNET.iterdir():  # copies: NLTK refuses symlinks that leave its root
        if f.is_file():
            shutil.copyfile(f, folder / f.name)
    lexnames_file(folder)
    nltk.data.path.insert(0, str(folder))  # NLTK reads corpora only under its data path

    class WordNet30(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # this is WordNet 3.0 itself: no mapping to NLTK's own copy
            return None

    return WordNet30(str(folder), None)


def caption_counts(shared: Path) -> collections.Counter:
    """Word counts of Flickr8k's training captions and ``caption_text`` (no dev or test captions)."""
    from edgecap.data.readers import read_flickr8k
    from edgecap.runtime.vocabulary import tokenize

    counts: collections.Counter = collections.Counter()
    for item in read_flickr8k(shared / "data" / "flickr8k", ("train",))["train"]:
        for c in item.captions:
            counts.update(tokenize(c))
    for tsv in sorted((shared / "data" / "caption_text").glob("*.tsv")):
        for line in tsv.read_text(encoding="utf-8").splitlines():
            counts.update(tokenize(line.partition("\t")[2]))
    return counts


def plurals(word: str, counts: collections.Counter) -> list[str]:
    """The plural forms captions write: WordNet's irregular plurals (mouse → mice), else -s, -es, -ies."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        guesses = [word + "es"]
    elif word.endswith("y") and word[-2:-1] not in "aeiou":
        guesses = [word[:-1] + "ies"]
    else:
        guesses = [word + "s"]
    guesses = [p for p, base in noun_exceptions() if base == word] + guesses
    return [g for g in dict.fromkeys(guesses) if g != word and counts[g] >= 3][:1]


_EXC: list[tuple[str, str]] = []


def noun_exceptions() -> list[tuple[str, str]]:
    """WordNet's ``noun.exc``: (inflected form, base form) pairs, e.g. ("mice", "mouse")."""
    if not _EXC:
        for line in (WORDNET / "noun.exc").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                _EXC.append((parts[0], parts[1]))
    return _EXC


def written(word: str, counts: collections.Counter) -> int:
    """How often captions write ``word``, its plural included."""
    return counts[word] + sum(counts[p] for p in plurals(word, counts))


def usual_lemmas(wn, synset) -> list[str]:
    """The one-word lemmas of ``synset`` whose most common noun sense (WordNet's first) is ``synset``
    itself: "car" names car.n.01, but "machine" (machine.n.01 first) does not."""
    out = []
    for name in synset.lemma_names():
        word = name.lower()
        if "_" in word or "-" in word:
            continue
        senses = wn.synsets(word, "n")
        if senses and senses[0] == synset:
            out.append(word)
    return out


PREFERRED_LEXNAMES = ("noun.animal", "noun.food", "noun.artifact", "noun.plant", "noun.object")


def find_synset(wn, label: str):
    """The WordNet synset of an ImageNet label (a synset's lemma list, e.g. "tabby, tabby cat"):
    the synset with exactly those lemmas; among several (Chihuahua the dog and the city), the one
    of an animal, food, artifact, plant or natural object, in that order."""
    names = [n.strip() for n in label.split(",")]
    key = {n.lower().replace(" ", "_") for n in names}
    candidates = [s for s in wn.synsets(names[0].replace(" ", "_"), "n") if {n.lower() for n in s.lemma_names()} >= key]
    candidates = candidates or wn.synsets(names[0].replace(" ", "_"), "n")
    if not candidates:
        return None
    rank = {lex: i for i, lex in enumerate(PREFERRED_LEXNAMES)}
    return min(candidates, key=lambda s: (rank.get(s.lexname(), len(rank)), candidates.index(s)))


def forms_of(wn, synset, word: str, counts: collections.Counter, rare: int) -> list[str]:
    """``word``, the synonyms captions write (usual lemmas of ``synset``), and their plurals."""
    synonyms = [w for w in usual_lemmas(wn, synset) if w != word and written(w, counts) >= rare] if synset else []
    forms = [word, *synonyms]
    for w in list(forms):
        forms.extend(plurals(w, counts))
    return list(dict.fromkeys(forms))


def classifier_words(wn, label: str, counts: collections.Counter, common: int, rare: int, own: int) -> list[str]:
    """An ImageNet synset's caption words: its own usual lemma if written ``own`` times, else the
    nearest usual lemma of its hypernyms written ``common`` times, else the most written one of
    at least ``rare`` times."""
    synset = find_synset(wn, label)
    if synset is None:
        return []
    seen, frontier, order = {synset}, [synset], []
    for _ in range(8):  # hypernyms, nearest first
        order.extend(frontier)
        nxt = []
        for s in frontier:
            for h in sorted(s.hypernyms() + s.instance_hypernyms(), key=lambda h: h.name()):  # NLTK keeps them in a set
                if h not in seen and h.name() not in TOO_GENERAL:
                    seen.add(h)
                    nxt.append(h)
        frontier = nxt
    ranked = [(written(w, counts), depth, w, s) for depth, s in enumerate(order) for w in usual_lemmas(wn, s)]
    near = [r for r in ranked if r[0] >= (own if r[1] == 0 else common)]
    if near:
        _, _, word, s = min(near, key=lambda r: r[1])
    else:
        ranked = [r for r in ranked if r[0] >= rare]
        if not ranked:
            return []
        _, _, word, s = max(ranked, key=lambda r: r[0])
    return forms_of(wn, s, word, counts, rare)


def detector_words(wn, label: str, counts: collections.Counter, rare: int) -> list[str]:
    """A COCO name is already a caption word: it, its usual synonyms and plurals."""
    if written(label, counts) < 3:
        return []
    senses = wn.synsets(label, "n")
    return forms_of(wn, senses[0] if senses else None, label, counts, rare)


def build(kind: str, labels_path: Path, offset: int, wn, counts, common: int, rare: int, own: int) -> dict:
    labels = labels_path.read_text(encoding="utf-8").splitlines()
    entries, corrections = [], CORRECTIONS[kind]
    for label in labels:
        if label in ("???", "background"):
            entries.append({"label": label, "words": []})
            continue
        if label in corrections:
            words = corrections[label]
        elif kind == "classifier":
            words = classifier_words(wn, label, counts, common, rare, own)
        else:
            words = detector_words(wn, label, counts, rare)
        entries.append({"label": label, "words": words})
    return {
        "kind": kind,
        "label_offset": offset,  # output index i (class id) is line i + label_offset of the labels file
        "made_by": f"scripts/make_tag_words.py (WordNet 3.0, --own {own} --common {common} --rare {rare})",
        "hand_corrections": corrections,
        "labels": entries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--out-dir", type=Path, default=Path("export/taggers"))
    parser.add_argument("--common", type=int, default=200, help="a lemma written this often is taken at once")
    parser.add_argument("--own", type=int, default=50, help="a label's own word written this often is taken")
    parser.add_argument("--rare", type=int, default=10, help="words written less often are never chosen")
    args = parser.parse_args()
    wn, counts = open_wordnet(), caption_counts(args.shared)
    taggers = args.shared / "weights" / "taggers"
    for name, kind, labels, offset in (
        ("imagenet_classifier", "classifier", taggers / "imagenet_labels.txt", 0),
        ("coco_detector", "detector", taggers / "labelmap.txt", 1),
    ):
        mapping = build(kind, labels, offset, wn, counts, args.common, args.rare, args.own)
        out = args.out_dir / f"{name}.words.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(mapping, indent=1) + "\n")
        named = sum(bool(e["words"]) for e in mapping["labels"])
        print(f"{out}: {named} of {len(mapping['labels'])} labels name a caption word")


if __name__ == "__main__":
    main()
