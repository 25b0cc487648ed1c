"""How far the int8 encoder is from float32, for several choices of layers kept in float32.

Converts the MobileNetV2 encoder alone (ImageNet weights) to int8 through
:func:`edgecap.export.exporter.convert`, once per ``--float-layers`` pattern ("" = full-integer),
calibrated on some photos and compared with Keras on others: relative L2 error of the 7×7×1280
annotation grid, mean per-cell cosine, and the median encode time on 1 thread (compare times
only within one run). The numbers behind ``MOBILENET_V2_STEM`` in ``edgecap/models/backbones.py``.

Usage: python scripts/int8_encoder_error.py --photos ../shared/data/flickr8k/Images \
           --weights ../shared/weights/mobilenet_v2_1.0_224_no_top.weights.h5
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edgecap.export.exporter import convert
from edgecap.models.backbones import MOBILENET_V2_STEM, build_encoder
from edgecap.runtime.interpreter import make_interpreter
from edgecap.runtime.preprocessing import load_image

PATTERNS = {
    "full-integer": "",
    "first depthwise layer": r"/expanded_conv_depthwise",
    "stem (Conv1, blocks 0-3)": MOBILENET_V2_STEM,
    "last 3 blocks": r"/(block_1[456]_|Conv_1)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", required=True, help="folder of .jpg photos (e.g. Flickr8k's Images)")
    ap.add_argument("--weights", default="imagenet", help="MobileNetV2 weights file (default: Keras' download)")
    ap.add_argument("--calibration", type=int, default=300, help="calibration photos")
    ap.add_argument("--test", type=int, default=100, help="photos compared with Keras")
    args = ap.parse_args()
    paths = sorted(Path(args.photos).glob("*.jpg"))
    random.Random(0).shuffle(paths)
    test = [load_image(p, 224)[None] for p in paths[: args.test]]
    calib = [load_image(p, 224)[None] for p in paths[args.test : args.test + args.calibration]]
    encoder = build_encoder("mobilenet_v2", args.weights)
    reference = np.concatenate([keras.ops.convert_to_numpy(encoder(x, training=False)) for x in test])  # (N, L, D)
    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(encoder)
        archive.add_endpoint(
            "encode",
            lambda image: {"annotations": encoder(image, training=False)},
            input_signature=[tf.TensorSpec((1, 224, 224, 3), tf.uint8, name="image")],
        )
        archive.write_out(tmp, verbose=False)
        print(
            f"{len(calib)} calibration photos, {len(test)} test photos; relative L2 of the annotation grid against Keras"
        )
        for label, pattern in PATTERNS.items():
            flatbuffer = convert(tmp, "int8", lambda: (("encode", {"image": x}) for x in calib), ("encode",), pattern)
            run = make_interpreter(flatbuffer, num_threads=1)[0].get_signature_runner("encode")
            got = np.concatenate([run(image=x)["annotations"] for x in test])
            rel = np.linalg.norm(got - reference) / np.linalg.norm(reference)
            cos = np.mean(
                np.sum(got * reference, -1)
                / np.maximum(np.linalg.norm(got, axis=-1) * np.linalg.norm(reference, axis=-1), 1e-12)
            )
            times = []
            for x in test[:20]:
                t = time.perf_counter()
                run(image=x)
                times.append(time.perf_counter() - t)
            print(
                f"{label:28s} relative L2 {rel:.3f}  per-cell cosine {cos:.3f}  encode {1e3 * np.median(times):.1f} ms (1 thread)"
            )


if __name__ == "__main__":
    main()
