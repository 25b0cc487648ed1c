"""``edgecap bench``: how fast and how large a model is on this machine.

Times (medians over repeated runs on real photos) the load, ``encode``, one ``decode_step``,
and whole captions (preprocess + encode + decode) greedy and with beam 3; the share of the
caption time spent outside the interpreter's ``Invoke``; peak memory; and, in the same run,
the Keras float model generating greedily step by step in eager mode (as the TensorFlow
image-captioning tutorial does), as a speed ratio.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _photos(image_dir) -> list[Path]:
    """Up to 20 photos: ``image_dir``, else Flickr8k dev photos (224×224) when present, else ``examples/``."""
    from edgecap.paths import examples_dir, resolve_data_root

    if image_dir:
        folder = Path(image_dir)
    else:
        flickr = resolve_data_root("../shared/data/flickr8k")
        if (flickr / "Flickr_8k.devImages.txt").is_file():
            return [flickr / "Images" / n for n in (flickr / "Flickr_8k.devImages.txt").read_text().split()[:20]]
        folder = examples_dir()
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise FileNotFoundError(f"{folder}: no .jpg/.png photos to time")
    return photos[:20]


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Linux keeps ``ru_maxrss`` across exec (a process
    started by a big parent reports the parent's peak), so ``VmHWM`` is read where it exists."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_tflite(model_path: Path, threads: int, photos: list[Path], repeats: int) -> dict:
    from edgecap.runtime import Captioner, CaptionerOptions
    from edgecap.runtime.captioner import TFLiteStep

    load_ms = _median_ms(lambda: Captioner.from_file(model_path, CaptionerOptions(num_threads=threads)), 3)
    greedy = Captioner.from_file(model_path, CaptionerOptions(beam_size=1, num_threads=threads))
    beam = Captioner.from_file(model_path, CaptionerOptions(beam_size=3, num_threads=threads))
    pixels = [greedy.preprocess(p) for p in photos]
    encode_ms = statistics.median(_median_ms(lambda x=x: greedy.encode(x), repeats) for x in pixels)
    ann, h, c = greedy.encode(pixels[0])
    step = TFLiteStep(greedy.step_signature, ann)
    tok = np.array([greedy.metadata.start_id], np.int32)
    step(tok, (h, c))
    step_ms = _median_ms(lambda: step(tok, (h, c)), repeats * 5)
    tok3, h3, c3 = np.repeat(tok, 3), np.repeat(h, 3, 0), np.repeat(c, 3, 0)
    step(tok3, (h3, c3))
    step3_ms = _median_ms(lambda: step(tok3, (h3, c3)), repeats * 5)

    def whole(captioner) -> tuple[float, float, float]:
        per_photo, outside, words = [], [], []
        for p in photos:
            captioner.caption(p)  # warm-up for this photo's shapes
            times, shares = [], []
            for _ in range(repeats):
                sigs = (captioner.encode_signature, captioner.step_signature)
                before = sum(s.invoke_seconds for s in sigs)
                t0 = time.perf_counter()
                result = captioner.caption(p)
                total = time.perf_counter() - t0
                inside = sum(s.invoke_seconds for s in sigs) - before
                times.append(total * 1e3)
                shares.append(1.0 - inside / total)
            per_photo.append(statistics.median(times))
            outside.append(statistics.median(shares))
            words.append(len(result.tokens))
        return statistics.median(per_photo), statistics.median(outside), float(np.mean(words))

    greedy_ms, greedy_out, greedy_words = whole(greedy)
    beam_ms, beam_out, beam_words = whole(beam)
    return {
        "threads": threads, "interpreter": greedy.backend, "load_ms": load_ms, "encode_ms": encode_ms,
        "decode_step_ms": step_ms, "decode_step_beam3_ms": step3_ms,
        "caption_greedy_ms": greedy_ms, "caption_greedy_outside_invoke": greedy_out, "greedy_words": greedy_words,
        "caption_beam3_ms": beam_ms, "caption_beam3_outside_invoke": beam_out, "beam3_words": beam_words,
        "peak_rss_mb": _peak_rss_mb(),
    }


def bench_keras(run_dir: Path, photos: list[Path], repeats: int) -> dict:
    """Keras float greedy generation, eager, one ``model.decode_step`` call per word."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from edgecap.runtime.preprocessing import load_image
    from edgecap.training.trainer import load_run

    cfg, vocab, model = load_run(run_dir)

    def generate(pixels):
        annotations, h, c = model.encode(pixels)
        token = tf.constant([vocab.start_id], tf.int32)
        words = []
        for _ in range(cfg.decode.max_length):
            log_probs, h, c, _ = model.decode_step(token, h, c, annotations)
            token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
            if int(token[0]) == vocab.end_id:
                break
            words.append(int(token[0]))
        return words

    times = []
    for p in photos:
        generate(load_image(p, model.spec.image_size)[None])
        times.append(_median_ms(lambda p=p: generate(load_image(p, model.spec.image_size)[None]), max(3, repeats // 4)))
    return {"caption_greedy_ms": statistics.median(times), "tensorflow": tf.__version__}


def run_bench(model_path: Path, thread_counts: list[int], image_dir=None, repeats: int = 20, keras_run=None) -> dict:
    """All figures as a dict (see module docstring)."""
    from edgecap.paths import released_dir
    from edgecap.runtime.metadata import read_file

    photos = _photos(image_dir)
    _, meta = read_file(model_path)
    report = {
        "model": str(model_path), "quantization": meta.quantization, "size_mb": Path(model_path).stat().st_size / 1e6,
        "photos": len(photos), "repeats": repeats, "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "tflite": [bench_tflite(Path(model_path), t, photos, repeats) for t in thread_counts],
    }
    keras_dir = None if keras_run == "none" else Path(keras_run) if keras_run else released_dir()
    if keras_dir is not None and (keras_dir / "best.weights.h5").is_file():
        try:
            report["keras"] = bench_keras(keras_dir, photos, repeats)
        except ImportError as e:
            report["keras_skipped"] = f"TensorFlow not installed ({e})"
    return report


def format_report(r: dict) -> str:
    lines = [f"model {r['model']} ({r['quantization']}, {r['size_mb']:.2f} MB), {r['photos']} photos x {r['repeats']} runs, {r['machine']}"]
    lines.append("threads  load ms  encode ms  step ms (B=1/B=3)  greedy ms (outside invoke)  beam-3 ms (outside invoke)  peak RSS MB")
    for t in r["tflite"]:
        lines.append(f"{t['threads']:>7}  {t['load_ms']:7.1f}  {t['encode_ms']:9.2f}  {t['decode_step_ms']:7.3f}/{t['decode_step_beam3_ms']:.3f}      "
                     f"{t['caption_greedy_ms']:9.2f} ({t['caption_greedy_outside_invoke']:5.1%})       {t['caption_beam3_ms']:9.2f} ({t['caption_beam3_outside_invoke']:5.1%})        {t['peak_rss_mb']:7.0f}")
    lines.append(f"interpreter: {r['tflite'][0]['interpreter']}")
    if "keras" in r:
        k = r["keras"]["caption_greedy_ms"]
        best = min(t["caption_greedy_ms"] for t in r["tflite"])
        lines.append(f"Keras float greedy (eager, TF {r['keras']['tensorflow']}): {k:.1f} ms per caption; TFLite greedy is {k / best:.1f}x faster")
    elif "keras_skipped" in r:
        lines.append(f"Keras baseline skipped: {r['keras_skipped']}")
    return "\n".join(lines)
