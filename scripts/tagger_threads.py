"""The default pipeline's latency with the tagger on 1 and on 2 threads, in one process.

For each setting, ``Captioner.caption()`` on every photo of a folder (after 5 warm-up photos): the
median time and the median of each part of ``timings_ms`` (decode + resize, encode, waiting for
the tags, the searches), and whether both settings gave the same records (captions, tags,
constraints). The detector alone is timed too. docs/runtime.md#workers reports a run.

Usage: python scripts/tagger_threads.py DIR [--limit 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from edgecap.runtime import Captioner, CaptionerOptions, Tagger, TaggerOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, help="a folder of .jpg photos")
    parser.add_argument("--limit", type=int, default=100, help="the first N photos by name")
    args = parser.parse_args()
    photos = sorted(args.images.glob("*.jpg"))[: args.limit]
    if not photos:
        raise SystemExit(f"{args.images}: no .jpg photos")
    for threads in (1, 2):
        tagger = Tagger.from_preset("coco_detector", TaggerOptions(num_threads=threads))
        pixels = [tagger.preprocess(p) for p in photos[:30]]
        for x in pixels[:3]:
            tagger.tag(x)
        t0 = time.perf_counter()
        for x in pixels:
            tagger.tag(x)
        print(
            f"the detector alone, {threads} thread(s): {(time.perf_counter() - t0) / len(pixels) * 1e3:.2f} ms a photo"
        )
    records = {}
    for threads in (1, 2):
        captioner = Captioner.from_preset(
            "show_attend_tell_flickr8k", CaptionerOptions(tagger_options=TaggerOptions(num_threads=threads))
        )
        for p in photos[:5]:
            captioner.caption(p)
        times, parts, out = [], {}, []
        for p in photos:
            t0 = time.perf_counter()
            r = captioner.caption(p)
            times.append((time.perf_counter() - t0) * 1e3)
            out.append((r.text, [(t.word, t.score) for t in r.tags], r.constraints))
            for k, v in r.timings_ms.items():
                parts.setdefault(k, []).append(v)
        records[threads] = out
        split = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in parts.items())
        print(f"tagger {threads} thread(s): Captioner.caption() median {statistics.median(times):.2f} ms ({split})")
    print("same records:", records[1] == records[2])


if __name__ == "__main__":
    main()
