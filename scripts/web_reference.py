"""Record what the Python runtime says of the example photos, for the browser's end-to-end test.

For every built-in captioner and every photo in ``examples/`` (or ``--photos``), the default
pipeline (``Captioner.caption`` with the built-in detector, 3-best) run twice:

- on the JPEG, with the pixels it fed each model (the captioner's and the detector's input,
  base64 ``uint8 (S, S, 3)``): the page, given the same pixels, must give the same captions,
  log-probabilities, tags and constraints (``web/test/page.test.js``);
- on a PNG of the photo's decoded pixels (written beside the record): the page, given that file
  through its file input, decodes it losslessly and resizes it as Pillow does, so its caption must
  be the same too.

Usage: python scripts/web_reference.py --out web/build/reference
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
from PIL import Image

from edgecap.paths import examples_dir
from edgecap.runtime import Captioner, CaptionerOptions
from edgecap.runtime.presets import preset_names, preset_path


def result_json(result) -> dict:
    """The fields the page shows, as plain JSON (log-probabilities as Python computed them)."""
    return {
        "captions": [{"text": c.text, "tokens": c.token_ids, "log_prob": c.log_prob} for c in result.nbest],
        "tags": [{"word": t.word, "score": t.score, "label": t.label, "box": list(t.box or ())} for t in result.tags],
        "constraints": list(result.constraints),
        "constraints_met": result.constraints_met,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for reference.json and the PNGs (made if missing)"
    )
    parser.add_argument("--photos", type=Path, default=None, help="a folder of photos (default: examples/)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    photos = sorted((args.photos or examples_dir()).glob("*.jpg"))
    pngs = {}
    for photo in photos:
        png = args.out / f"{photo.stem}.png"
        Image.open(photo).convert("RGB").save(png)
        pngs[photo] = png
    records = []
    for name in preset_names(task="captioning"):
        captioner = Captioner.from_file(preset_path(name), CaptionerOptions(num_results=3))
        for photo in photos:
            pixels = {"captioner": captioner.preprocess(photo)}
            for tagger in captioner.taggers:
                pixels[tagger.name] = tagger.preprocess(photo)
            records.append(
                {
                    "model": name,
                    "photo": photo.name,
                    "png": pngs[photo].name,
                    "pixels": {
                        k: base64.b64encode(np.ascontiguousarray(v, np.uint8).tobytes()).decode()
                        for k, v in pixels.items()
                    },
                    "jpeg": result_json(captioner.caption(photo)),
                    "png_result": result_json(captioner.caption(pngs[photo])),
                }
            )
            print(f"{name} {photo.name}: {records[-1]['jpeg']['captions'][0]['text']!r}")
    (args.out / "reference.json").write_text(json.dumps(records))


if __name__ == "__main__":
    main()
