"""Where a caption's time goes outside the interpreter: per stage, in ms per caption.

Wraps the stages of ``Captioner.caption`` with timers (each adds ~1 µs a call) and captions
``--images`` photos ``--repeats`` times each, beam search as the model's default or
``--beam-size``: preprocess, ``encode`` (Invoke, and the rest: setting and reading tensors),
the decode steps (Invoke, and the rest), the logits processors, the candidate selection and
what remains of the search, and the whole caption.

Usage: python scripts/caption_profile.py [--model NAME] [--beam-size 3] [--images DIR] [--repeats 10]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import defaultdict
from pathlib import Path


def main() -> None:
    import edgecap.decoding.search as search
    import edgecap.runtime.captioner as captioner_module
    from edgecap.bench import _photos
    from edgecap.decoding import LogitsProcessorList
    from edgecap.runtime import Captioner, CaptionerOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="show_attend_tell_flickr8k")
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--images", type=Path, help="default: 20 Flickr8k dev photos, else examples/")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    spent: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0

        return wrapper

    search.best_candidates = timed("candidate selection", search.best_candidates)
    captioner_module.TFLiteStep.__call__ = timed("decode steps", captioner_module.TFLiteStep.__call__)
    captioner_module.Captioner.preprocess = timed("preprocess", captioner_module.Captioner.preprocess)
    captioner_module.Captioner.encode_with_items = timed("encode", captioner_module.Captioner.encode_with_items)
    captioner_module.Captioner.search = timed("search", captioner_module.Captioner.search)
    options = CaptionerOptions(beam_size=args.beam_size, num_threads=1, return_attention=False)
    captioner = Captioner.from_preset(args.model, options)

    class TimedProcessors(LogitsProcessorList):
        __call__ = timed("logits processors", LogitsProcessorList.__call__)

    captioner.suppress = TimedProcessors(captioner.suppress)
    photos = _photos(args.images)
    for p in photos:
        captioner.caption(p)  # warm-up
    spent.clear()
    encode, step = captioner.encode_signature, captioner.step_signature
    encode.invoke_seconds = step.invoke_seconds = 0.0
    t0 = time.perf_counter()
    for p in photos:
        for _ in range(args.repeats):
            captioner.caption(p)
    n = len(photos) * args.repeats
    total = (time.perf_counter() - t0) / n * 1e3

    def ms(seconds: float) -> float:
        return seconds / n * 1e3

    rows = {
        "preprocess": ms(spent["preprocess"]),
        "encode: Invoke": ms(encode.invoke_seconds),
        "encode: the rest": ms(spent["encode"] - encode.invoke_seconds),
        "decode steps: Invoke": ms(step.invoke_seconds),
        "decode steps: the rest": ms(spent["decode steps"] - step.invoke_seconds),
        "logits processors": ms(spent["logits processors"]),
        "candidate selection": ms(spent["candidate selection"]),
        "search: the rest": ms(
            spent["search"] - spent["decode steps"] - spent["logits processors"] - spent["candidate selection"]
        ),
    }
    rows["caption: the rest"] = total - sum(rows.values())
    invoke = rows["encode: Invoke"] + rows["decode steps: Invoke"]
    print(f"{args.model}, beam {args.beam_size}, {len(photos)} photos x {args.repeats}: {total:.3f} ms a caption")
    for name, value in rows.items():
        print(f"  {name:24} {value:7.3f} ms  {value / total:6.1%}")
    print(f"  outside Invoke           {total - invoke:7.3f} ms  {(total - invoke) / total:6.1%}")


if __name__ == "__main__":
    main()
