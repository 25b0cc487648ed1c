"""Rewrite a uint8 tagger file as int8 with per-channel weights, and measure what moved.

    python scripts/requantize_tagger.py ../shared/weights/taggers/detect.tflite \
        export/taggers/coco_detector.tflite \
        --check ../shared/data/coco_dev/Images \
        --check ../shared/data/flickr8k/Images=../shared/data/flickr8k/Flickr_8k.devImages.txt

The rewrite is :func:`edgecap.export.requantize.uint8_to_int8` (activations shifted exactly,
weights requantized per channel). Then, on each ``--check`` set of photos (``DIR`` or
``DIR=LIST``, a list of file names), it compares the detector's raw outputs and the tagger's tags
of the two files, and, as the yardstick, the uint8 file against itself on LiteRT's two CPU paths
(the default one, where XNNPACK takes what it can, and the builtin kernels alone): the same file
moves that much between runtimes.

- detections: each original detection scored ≥ ``--score`` is matched to the new file's
  detection of the same class with the highest IoU (≥ 0.5); unmatched ones are counted; for the
  matched, the largest and the mean |Δ score| and the largest box-coordinate difference.
- tags: the tagger's tags (default options: words, best first, 5 at most) identical as words,
  and as (word, score) pairs.
- speed: each file's median ``invoke`` at 1 thread on the first set's photos, in this run.

The output file is written atomically; nothing is written when the rewrite fails.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from edgecap.export.requantize import detection_agreement, uint8_to_int8
from edgecap.runtime.interpreter import make_interpreter
from edgecap.runtime.ops import model_object
from edgecap.runtime.preprocessing import load_image
from edgecap.runtime.tagger import Tagger, TaggerOptions, read_tag_words
from edgecap.utils import atomic_write_bytes

LABELS = Path(__file__).resolve().parents[1] / "export" / "taggers"


def photo_set(spec: str) -> tuple[str, list[Path]]:
    folder, _, listing = spec.partition("=")
    root = Path(folder)
    if listing:
        names = [n.strip() for n in Path(listing).read_text().split() if n.strip()]
        return f"{root} ({Path(listing).name})", [root / n for n in names]
    return str(root), sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def raw_outputs(content: bytes, pixels: list[np.ndarray], kernels: str) -> list[list[np.ndarray]]:
    interpreter, _ = make_interpreter(content, 1, kernels=kernels)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    outs = [d["index"] for d in interpreter.get_output_details()]
    result = []
    for x in pixels:
        interpreter.set_tensor(inp, x[None])
        interpreter.invoke()
        result.append([interpreter.get_tensor(i).copy() for i in outs])
    return result


def invoke_ms(content: bytes, pixels: list[np.ndarray], repeats: int = 5) -> float:
    interpreter, _ = make_interpreter(content, 1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    times = []
    for x in pixels:
        interpreter.set_tensor(inp, x[None])
        interpreter.invoke()
        for _ in range(repeats):
            t0 = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def tags(content: bytes, photos: list[Path], kernels: str) -> list[list[tuple[str, float]]]:
    words = read_tag_words(LABELS / "coco_detector.words.json", LABELS / "coco_detector.labels.txt")
    tagger = Tagger(content, words, TaggerOptions(num_threads=1, kernels=kernels), "coco_detector")
    return [[(t.word, round(t.score, 6)) for t in tagger.tag(p)] for p in photos]


def same_tags(a: list, b: list) -> tuple[int, int]:
    words = sum([w for w, _ in x] == [w for w, _ in y] for x, y in zip(a, b))
    return words, sum(x == y for x, y in zip(a, b))


def exact_channels(original: bytes, rewritten: bytes) -> tuple[int, int]:
    """Output channels of the int8 weights that kept the uint8 file's scale (exact), and all of them."""
    old = {t.name: t for t in model_object(original).subgraphs[0].tensors}
    exact = total = 0
    for t in model_object(rewritten).subgraphs[0].tensors:
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) > 1 and old.get(t.name) is not None:
            if old[t.name].type == 3:  # UINT8 weights: not the per-channel biases (INT32)
                total += len(q.scale)
                exact += int((q.scale == old[t.name].quantization.scale[0]).sum())
    return exact, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the uint8 .tflite file")
    parser.add_argument("output", type=Path, help="where the int8 file goes")
    parser.add_argument("--check", action="append", default=[], help="DIR or DIR=LIST of photos to compare on")
    parser.add_argument("--score", type=float, default=0.3, help="compare detections scored at least this")
    args = parser.parse_args()
    content = args.source.read_bytes()
    rewritten = uint8_to_int8(content)
    atomic_write_bytes(args.output, rewritten)
    print(f"{args.output}: {len(rewritten) / 1e6:.2f} MB (from {len(content) / 1e6:.2f} MB)")
    exact, total = exact_channels(content, rewritten)
    print(f"convolution weights: {exact} of {total} output channels exact (the old scale), {total - exact} rescaled")
    for n, spec in enumerate(args.check):
        name, photos = photo_set(spec)
        pixels = [load_image(p, 300) for p in photos]
        uint8_default = raw_outputs(content, pixels, "default")
        uint8_builtin = raw_outputs(content, pixels, "builtin")
        int8_default = raw_outputs(rewritten, pixels, "default")
        t_u8, t_u8b, t_i8 = (
            tags(c, photos, k) for c, k in ((content, "default"), (content, "builtin"), (rewritten, "default"))
        )
        print(f"\n{name}: {len(photos)} photos, detections scored >= {args.score}")
        for label, old, new, t_old, t_new in (
            ("int8 rewrite vs uint8 (default kernels)", uint8_default, int8_default, t_u8, t_i8),
            ("yardstick: uint8 builtin vs default kernels", uint8_default, uint8_builtin, t_u8, t_u8b),
        ):
            c = detection_agreement(old, new, args.score)
            words, exact = same_tags(t_old, t_new)
            print(
                f"  {label}: {c['detections']} detections, {c['unmatched']} unmatched, |d score| max {c['max_dscore']:.4f} "
                f"mean {c['mean_dscore']:.4f}, |d box| max {c['max_dbox']:.4f}; tags: same words on {words}/{len(photos)}, "
                f"same words and scores on {exact}/{len(photos)}"
            )
        if n == 0:
            few = pixels[:20]
            print(
                f"  invoke at 1 thread (median): uint8 {invoke_ms(content, few):.2f} ms, int8 {invoke_ms(rewritten, few):.2f} ms"
            )


if __name__ == "__main__":
    main()
