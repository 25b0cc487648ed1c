"""Where a caption's time goes outside the interpreter: per stage, in ms per caption.

Wraps the stages of ``Captioner.caption`` with timers (each adds ~1 µs a call) and captions
``--images`` photos ``--repeats`` times each, beam search as the model's default or
``--beam-size``: preprocess, ``encode`` (Invoke, and the rest: setting and reading tensors),
the decode steps (Invoke, and the rest), the logits processors, the candidate selection and
what remains of the search, and the whole caption.

Then each piece of one beam step alone, on one real step's tensors (the median of 2,000
calls, in µs): with warm caches, right after an ``Invoke`` of the step, and right after a
``sum`` over 16 MB (caches flushed by something other than the interpreter); and those
pieces together, per step and per caption (times the steps a caption takes).

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

    calls: dict[str, int] = defaultdict(int)

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            calls[name] += 1
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
    options = CaptionerOptions(beam_size=args.beam_size, num_threads=1, return_attention=False, taggers=())
    captioner = Captioner.from_preset(args.model, options)

    class TimedProcessors(LogitsProcessorList):
        __call__ = timed("logits processors", LogitsProcessorList.__call__)

    captioner.suppress = TimedProcessors(captioner.suppress)
    photos = _photos(args.images)
    for p in photos:
        captioner.caption(p)  # warm-up
    spent.clear()
    calls.clear()
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
    steps = calls["decode steps"] / n
    invoke = rows["encode: Invoke"] + rows["decode steps: Invoke"]
    print(f"{args.model}, beam {args.beam_size}, {len(photos)} photos x {args.repeats}: {total:.3f} ms a caption")
    for name, value in rows.items():
        print(f"  {name:24} {value:7.3f} ms  {value / total:6.1%}")
    print(f"  outside Invoke           {total - invoke:7.3f} ms  {(total - invoke) / total:6.1%}")
    print(f"  decode steps a caption   {steps:7.1f}")
    pieces = step_pieces(captioner, photos[0], args.beam_size or 3)
    print(
        "one beam step's pieces alone, median of 2,000 calls, µs: with warm caches / right after an Invoke"
        " / right after reading 16 MB"
    )
    for name, (warm, cold, flushed) in pieces.items():
        print(f"  {name:32} {warm:7.1f} / {cold:7.1f} / {flushed:7.1f}")
    warm, cold = (sum(v[i] for v in pieces.values()) for i in (0, 1))
    print(
        f"  together: {warm:.1f} / {cold:.1f} µs a step; times {steps:.1f} steps: {warm * steps / 1e3:.3f} / "
        f"{cold * steps / 1e3:.3f} ms a caption ({warm * steps / 1e3 / total:.1%} / {cold * steps / 1e3 / total:.1%} of it)"
    )


def step_pieces(captioner, photo, beam_size: int) -> dict[str, tuple[float, float, float]]:
    """µs of each piece of one beam step of ``beam_size`` rows, alone: the median of 2,000
    calls with warm caches, of 2,000 calls each right after an ``Invoke`` of the step (which
    streams the step's weights through the caches, as in a search), and of 2,000 calls each
    right after a ``sum`` over 16 MB."""
    import numpy as np

    from edgecap.decoding.search import best_candidates
    from edgecap.runtime.contract import TOKENS

    state, memory = captioner.encode(captioner.preprocess(photo))
    step = captioner.step_function(memory, attention=False)
    tokens = np.full((beam_size,), captioner.metadata.start_id, np.int32)
    state = tuple(np.repeat(s, beam_size, axis=0) for s in state)
    log_probs, new_state, _ = step(tokens, state)
    sig = captioner.step_signature
    wrapper, subgraph = sig._wrapper, sig._subgraph
    scores = np.zeros((beam_size, 1), np.float32)
    words = np.zeros((beam_size, 3), np.int32)
    order = np.array([0] * beam_size)

    big = np.ones(4 << 20, np.float32)  # 16 MB

    def invoke() -> None:
        wrapper.Invoke(subgraph)

    def flush() -> None:
        big.sum()

    def median_us(fn) -> tuple[float, float, float]:
        warm, cold, flushed = [], [], []
        for before, times in ((None, warm), (invoke, cold), (flush, flushed)):
            for _ in range(2000):
                if before:
                    before()
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return sorted(warm)[1000] * 1e6, sorted(cold)[1000] * 1e6, sorted(flushed)[1000] * 1e6

    return {
        "set the inputs": median_us(
            lambda: (
                [wrapper.SetTensor(sig._inputs[k], v, subgraph) for k, v in zip(step.state_names, new_state)]
                + [wrapper.SetTensor(sig._inputs[TOKENS], tokens, subgraph)]
            )
        ),
        "read the outputs": median_us(lambda: [wrapper.GetTensor(sig._outputs[k], subgraph) for k in step.outputs]),
        "logits processors": median_us(lambda: captioner.suppress(log_probs, words)),
        "add the beams' scores": median_us(lambda: np.add(log_probs, scores, out=log_probs)),
        "candidate selection (2K best)": median_us(lambda: best_candidates(log_probs, 2 * beam_size)),
        "reorder the state": median_us(lambda: tuple(s[order] for s in new_state)),
    }


if __name__ == "__main__":
    main()
