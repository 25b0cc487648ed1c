"""Record the Python runtime's decoding, step by step, for the Java core's golden tests.

For every built-in model and every photo in ``examples/``, greedy and beam 3 (3-best), and
constrained beam search with 1 and 3 beams per state over the built-in detector's two best tags,
with the model's own decoding settings: each ``decode_step`` call's input tokens and output
log-probabilities (float32, before the search edits them), and the hypotheses the Python search
returned (token ids, log-probability, score, text). The Java core replays the recorded step
outputs through its own search and must give the same tokens, log-probabilities and text
(``android_demo/core/src/test/java/edgecap/core/GoldenTest.java``). A tag-conditioned model is
decoded with the photo's tags (the default pipeline's detector), recorded with the tag inputs
the Python runtime made of them (``*.tags.json``, for ``TagInputsTest.java``). Also, per photo, a PNG of the
decoded pixels and the encoder input that ``load_image`` makes of it, for the Java resize; and
the same for a few seeded noise images of other shapes (tall, wide, smaller than the input), whose
pass order differs from the examples' under Pillow 13 (written only with Pillow 13 or newer).

Usage: python scripts/record_golden.py --out android_demo/core/build/golden
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from edgecap.decoding import beam_search, constrained_beam_search, greedy_search
from edgecap.paths import examples_dir
from edgecap.runtime import Captioner, CaptionerOptions
from edgecap.runtime.guidance import vocabulary_forms
from edgecap.runtime.preprocessing import load_image
from edgecap.runtime.presets import preset_names, preset_path
from edgecap.runtime.tagger import Tagger, TaggerOptions

BEAM_SIZES = (1, 3)
#: (width, height) of the seeded noise images for the resize: vertical pass first (tall), horizontal
#: first (wide, and tall but not enough), and an upscaled width
RESIZE_SHAPES = ((427, 640), (300, 500), (400, 560), (640, 427), (200, 500), (150, 120))
CONSTRAINED_BEAM_SIZES = (1, 3)
#: (width, height) of the seeded noise images for the resize: vertical pass first (tall), horizontal
#: first (wide, and tall but not enough), and an upscaled width
RESIZE_SHAPES = ((427, 640), (300, 500), (400, 560), (640, 427), (200, 500), (150, 120))


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def record(
    captioner: Captioner, pixels: np.ndarray, beam_size: int, constraints: list | None = None, tags: list | None = None
) -> dict:
    """One decoding of one photo: every step call and the hypotheses (``constraints``: a
    constrained beam search over these sets of word ids; ``tags``: a tag-conditioned model's
    tags of the photo)."""
    m = captioner.metadata
    state, memory = captioner.encode(pixels, tags)
    step = captioner.step_function(memory, attention=False)
    calls = []

    def recording_step(tokens, st):
        log_probs, new_state, attention = step(tokens, st)
        calls.append({"tokens": tokens.tolist(), "log_probs": _b64(log_probs, "<f4"), "shape": list(log_probs.shape)})
        return log_probs, new_state, attention

    if constraints:
        hyps = constrained_beam_search(
            recording_step,
            state,
            m.start_id,
            m.end_id,
            constraints,
            len(m.vocabulary),
            beam_size,
            m.max_length,
            m.length_penalty,
            beam_size,
            captioner.suppress,
        )
    elif beam_size == 1:
        hyps = greedy_search(recording_step, state, m.start_id, m.end_id, m.max_length, captioner.suppress)
    else:
        hyps = beam_search(
            recording_step,
            state,
            m.start_id,
            m.end_id,
            beam_size,
            m.max_length,
            m.length_penalty,
            beam_size,
            captioner.suppress,
        )
    return {
        "beam_size": beam_size,
        "constraints": constraints or [],
        "calls": calls,
        "hypotheses": [
            {
                "tokens": h.tokens,
                "log_prob": h.log_prob,
                "score": h.score,
                "text": " ".join(m.vocabulary[t] for t in h.tokens),
                "constraints_met": h.constraints_met,
            }
            for h in hyps
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the golden files (made if missing)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    photos = sorted(examples_dir().glob("*.jpg"))
    for photo in photos:  # the decoded pixels, lossless, and what load_image makes of them
        png = args.out / f"{photo.stem}.png"
        Image.open(photo).convert("RGB").save(png)
        pixels = load_image(png, 224)
        (args.out / f"{photo.stem}.resize224.json").write_text(
            json.dumps({"png": png.name, "size": 224, "rgb": _b64(pixels, "u1")})
        )
    if int(PIL.__version__.split(".")[0]) >= 13:  # the pass order of python-pillow/Pillow#9549
        rng = np.random.default_rng(0)
        for w, h in RESIZE_SHAPES:
            png = args.out / f"noise_{w}x{h}.png"
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(png)
            pixels = load_image(png, 224)
            (args.out / f"noise_{w}x{h}.resize224.json").write_text(
                json.dumps({"png": png.name, "size": 224, "rgb": _b64(pixels, "u1")})
            )
    else:
        print(f"Pillow {PIL.__version__}: no resize cases of other shapes (their pass order is Pillow 13's)")
    detector = Tagger.from_preset("coco_detector", TaggerOptions(max_results=2))
    tags = {photo: detector.tag(photo) for photo in photos}
    pipeline = Tagger.from_preset("coco_detector")  # the default pipeline's options: a tagged model's inputs
    pipeline_tags = {photo: pipeline.tag(photo) for photo in photos}
    for name in preset_names(task="captioning"):
        path = preset_path(name)
        captioner = Captioner.from_file(path, CaptionerOptions(taggers=()))
        for photo in photos:
            pixels = captioner.preprocess(photo)
            seen = None  # a tag-conditioned model reads the photo's tags: recorded with their inputs
            if captioner.contract.tags is not None:
                seen = pipeline_tags[photo]
                inputs = captioner.tag_memory(seen)
                out = args.out / f"{name}.{photo.stem}.tags.json"
                tag_list = [
                    {"word": t.word, "score": t.score, "source": t.source, "forms": list(t.forms)} for t in seen
                ]
                out.write_text(
                    json.dumps(
                        {
                            "model": str(path.resolve()),
                            "photo": photo.name,
                            "tags": tag_list,
                            "ids": inputs[captioner.contract.tags.ids][0].tolist(),
                            "scores": inputs[captioner.contract.tags.scores][0].tolist(),
                        }
                    )
                )
            for k in BEAM_SIZES:
                rec = {"model": str(path.resolve()), "photo": photo.name, **record(captioner, pixels, k, tags=seen)}
                out = args.out / f"{name}.{photo.stem}.beam{k}.json"
                out.write_text(json.dumps(rec))
                print(f"{out}: {len(rec['calls'])} steps, {rec['hypotheses'][0]['text']!r}")
            # constrained search over the detector's two best tags (whether or not the free caption says them)
            constraints = [ids for ids in (vocabulary_forms(t, captioner.word_index) for t in tags[photo]) if ids]
            for k in CONSTRAINED_BEAM_SIZES:
                rec = {
                    "model": str(path.resolve()),
                    "photo": photo.name,
                    **record(captioner, pixels, k, constraints, seen),
                }
                out = args.out / f"{name}.{photo.stem}.constrained{k}.json"
                out.write_text(json.dumps(rec))
                print(f"{out}: {len(rec['calls'])} steps, {rec['hypotheses'][0]['text']!r}")


if __name__ == "__main__":
    main()
