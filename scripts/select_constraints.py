"""Choose which tags constrain the captions, on the dev sets only (coco_dev and Flickr8k dev).

For every dev photo: the free beam-search caption (a tag-conditioned model's given the default
pipeline's tags as its input), the tags of both built-in taggers, and the
constrained search's caption for every constraint set some rule asks for (cached, so a grid of
rules costs one search per distinct set). Each rule of the grid (tagger, ``min_score``,
``max_constraints``, ``common_words``, ``margin``, ``confident``; :class:`edgecap.runtime.guidance.ConstraintOptions`)
is scored with CIDEr-D, BLEU-4 and CHAIRs (no Java), and so is the caption without any
constraint; a tag-conditioned model's grid also tries each ``untagged_penalty`` of rule 7 (the
free caption then changes too). The chosen rule is the one with the best
``coco_dev`` CIDEr-D whose Flickr8k dev CIDEr-D and BLEU-4 lose at most ``--max-cider-loss`` /
``--max-bleu-loss`` against the free captions (the model alone), preferring those whose
coco_dev CHAIRs is at most ``--max-chair``. Writes the table and the choice as JSON.

Usage: python scripts/select_constraints.py --model show_attend_tell_flickr8k --out runs/constraints.json
       python scripts/select_constraints.py --model FILE --grid default --out runs/untagged.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

from tqdm import tqdm

from edgecap.config import Config
from edgecap.evaluation.chair import chair
from edgecap.evaluation.metrics import bleu4, cider_d
from edgecap.paths import repo_root
from edgecap.runs import read_splits
from edgecap.runtime import Captioner, CaptionerOptions
from edgecap.runtime.guidance import (
    ConstraintOptions,
    choose_constraints,
    keep_constrained,
    per_word,
    untagged_words,
)
from edgecap.runtime.presets import resolve_model
from edgecap.runtime.tagger import Tagger, TaggerOptions

TAGGERS = ("coco_detector", "imagenet_classifier")
GRID = {
    "taggers": [("coco_detector",)],
    "min_score": [0.5, 0.6, 0.7],
    "max_constraints": [1, 2, 3],
    "common_words": [0, 300],
    "margin": [1.0, math.inf],
    "confident": [0.0, -0.9, -0.8, -0.7],
}
#: ``--grid default``: the released rule alone (ConstraintOptions' defaults), beside no constraint
DEFAULT_GRID = {
    k: [getattr(ConstraintOptions(), k)]
    for k in ("min_score", "max_constraints", "common_words", "margin", "confident")
}
DEFAULT_GRID = {"taggers": [("coco_detector",)], **DEFAULT_GRID}
#: rule 7, for a tag-conditioned model: nats off the COCO words the detector did not see (0.3)
UNTAGGED_PENALTIES = [0.0, 2.0, 5.0, math.inf]


class Cached:
    """One photo's encoded state, free caption, tags and constrained captions by constraint set."""

    def __init__(
        self, captioner: Captioner, taggers: dict[str, Tagger], path: Path, pipeline: Tagger, penalty: float = 0.0
    ):
        self.captioner = captioner
        # a tag-conditioned model reads the default pipeline's tags (ignored by the others), and
        # its search takes `penalty` nats from the COCO words the detector did not see (rule 7)
        seen = pipeline.tag(path)
        self.state, self.memory = captioner.encode(captioner.preprocess(path), seen)
        guard = untagged_words(seen, captioner.word_index, ConstraintOptions(untagged_penalty=penalty))
        self.processors = [guard] if guard is not None and captioner.contract.tags is not None else []
        self.free = captioner.search(self.state, self.memory, processors=self.processors)[0]
        self.tags = {name: t.tag(path) for name, t in taggers.items()}
        self.constrained: dict[tuple, object] = {}

    def caption(self, names: tuple[str, ...], options: ConstraintOptions) -> str:
        c = self.captioner
        tags = sorted((t for n in names for t in self.tags[n]), key=lambda t: (-t.score, t.word))
        chosen = choose_constraints(tags, c.word_index, self.free.tokens, options, per_word(self.free))
        hyp = self.free
        if chosen:
            key = tuple(tuple(ids) for _, ids in chosen)
            if key not in self.constrained:
                self.constrained[key] = c.search(
                    self.state, self.memory, constraints=[list(k) for k in key], processors=self.processors
                )[0]
            cand = self.constrained[key]
            if keep_constrained(self.free, cand, options.margin):
                hyp = cand
        return " ".join(c.vocabulary[i] for i in hyp.tokens)


def _json_number(value: float) -> float | None:
    return None if math.isinf(value) else value


def load(config: str, split: str, limit: int):
    cfg = Config.load(repo_root() / config)
    items = read_splits(cfg, (split,))[split]
    return items[:limit] if limit else items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="show_attend_tell_flickr8k", help="a built-in model's name or a .tflite file"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--flickr-dev-limit", type=int, default=0, help="first N Flickr8k dev photos (0: all 1,000)")
    parser.add_argument("--max-cider-loss", type=float, default=0.5)
    parser.add_argument("--max-bleu-loss", type=float, default=0.15)
    parser.add_argument(
        "--max-chair", type=float, default=30.0, help="prefer rules whose coco_dev CHAIRs is at most this (issue 44)"
    )
    parser.add_argument(
        "--grid", choices=("full", "default"), default="full", help="every rule, or the released rule alone"
    )
    args = parser.parse_args()

    captioner = Captioner.from_file(resolve_model(args.model), CaptionerOptions(return_attention=False, taggers=()))
    taggers = {
        n: Tagger.from_preset(n, TaggerOptions(max_results=5, score_threshold=min(GRID["min_score"]))) for n in TAGGERS
    }
    sets = {
        "coco_dev": load("edgecap/configs/coco_dev.toml", "dev", 0),
        "flickr8k_dev": load("edgecap/configs/show_attend_tell_flickr8k.toml", "dev", args.flickr_dev_limit),
    }
    pipeline = Tagger.from_preset("coco_detector")  # the default pipeline's options
    refs = {name: {it.image_id: it.captions for it in items} for name, items in sets.items()}

    def score(name: str, captions: list[str]) -> dict:
        hyps = {it.image_id: c for it, c in zip(sets[name], captions)}
        return {
            "CIDEr-D": cider_d(refs[name], hyps),
            "BLEU-4": bleu4(refs[name], hyps),
            "CHAIRs": chair(refs[name], hyps).chair_s,
        }

    penalties = UNTAGGED_PENALTIES if captioner.contract.tags is not None else [0.0]
    rows, free_by_penalty = [], {}
    for penalty in penalties:
        cache = {
            name: [
                Cached(captioner, taggers, it.path, pipeline, penalty)
                for it in tqdm(items, desc=f"encoding {name} (untagged penalty {penalty})", unit="img")
            ]
            for name, items in sets.items()
        }
        free = {
            name: score(name, [" ".join(captioner.vocabulary[i] for i in p.free.tokens) for p in cache[name]])
            for name in sets
        }
        free_by_penalty[str(penalty)] = free
        rows.append({"constrained": False, "untagged_penalty": _json_number(penalty), **free})
        grid = GRID if args.grid == "full" else DEFAULT_GRID
        combos = list(itertools.product(*(grid[k] for k in GRID)))
        for names, min_score, max_c, common, margin, confident in tqdm(combos, desc="rules", unit="rule"):
            options = ConstraintOptions(min_score, max_c, common, True, margin, confident)
            row = {"constrained": True, "untagged_penalty": _json_number(penalty), "taggers": list(names)}
            row.update({"min_score": min_score, "max_constraints": max_c, "common_words": common})
            row["confident"] = confident
            row["margin"] = _json_number(margin)
            for name in sets:
                captions = [p.caption(names, options) for p in cache[name]]
                row[name] = score(name, captions)
                row[name]["changed"] = sum(
                    c != " ".join(captioner.vocabulary[i] for i in p.free.tokens) for c, p in zip(captions, cache[name])
                )
            rows.append(row)
    free = free_by_penalty["0.0"]  # the model alone (no rule 7, no constraint): the Flickr8k baseline
    ok = [
        r
        for r in rows
        if r["flickr8k_dev"]["CIDEr-D"] >= free["flickr8k_dev"]["CIDEr-D"] - args.max_cider_loss
        and r["flickr8k_dev"]["BLEU-4"] >= free["flickr8k_dev"]["BLEU-4"] - args.max_bleu_loss
    ]
    # the best coco_dev CIDEr-D within the Flickr8k budget among the rules whose coco_dev CHAIRs
    # meets --max-chair; when none does, among all within the budget
    grounded = [r for r in ok if r["coco_dev"]["CHAIRs"] <= args.max_chair]
    best = max(grounded or ok, key=lambda r: r["coco_dev"]["CIDEr-D"]) if ok else None
    frontier = max(rows, key=lambda r: r["coco_dev"]["CIDEr-D"])
    report = {"model": args.model, "free": free, "chosen": best, "best_coco_dev_any_cost": frontier, "rules": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(args.out)
    print("free:", json.dumps(free))
    print("chosen:", json.dumps(best))
    print("best coco_dev at any Flickr8k cost:", json.dumps(frontier))


if __name__ == "__main__":
    main()
