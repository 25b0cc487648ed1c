"""The fast beam search gives the plain search's captions, token for token, on real photos.

For every built-in captioner (or ``--model``), every photo is encoded once and searched with
:func:`edgecap.decoding.beam_search` and with the plain beam search of revision 1caa84c
(``tests/reference_search.py``), with the model's own processors (the reference's n-gram ban
is the plain one too), beam 3, the 3-best list (words, log-probabilities, scores) and the
attention compared. Prints one line per model and exits 1 on any difference.

Usage: python scripts/search_parity.py [--limit 1000] [--model NAME ...] [--images DIR]
Default photos: the first --limit Flickr8k test photos in ../shared, else examples/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import reference_search as ref  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from edgecap.runtime import Captioner, CaptionerOptions
    from edgecap.runtime.presets import preset_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--model", action="append", help="built-in name or .tflite (default: every captioner)")
    parser.add_argument("--images", type=Path, help="a folder of photos")
    args = parser.parse_args(argv)
    photos = photo_list(args.images, args.limit)
    failed = False
    for name in args.model or preset_names(Captioner.TASK):
        options = CaptionerOptions(num_threads=1, taggers=())
        c = Captioner.from_file(name, options) if name.endswith(".tflite") else Captioner.from_preset(name, options)
        bad = 0
        for p in photos:
            found = ref.photo_differences(c, c.preprocess(p))
            if found:
                bad += 1
                if bad <= 3:
                    print(f"  {p.name}: " + "; ".join(found))
        failed |= bad > 0
        print(f"{name}: {len(photos) - bad}/{len(photos)} photos with the same beam-3 3-best lists")
    return 1 if failed else 0


def photo_list(folder: Path | None, limit: int) -> list[Path]:
    if folder is None:
        from edgecap.utils import shared_dir

        try:
            flickr = shared_dir() / "data" / "flickr8k"
            names = (flickr / "Flickr_8k.testImages.txt").read_text().split()[:limit]
            return [flickr / "Images" / n for n in names]
        except (FileNotFoundError, OSError):
            folder = ROOT / "examples"
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]


if __name__ == "__main__":
    sys.exit(main())
