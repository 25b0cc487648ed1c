"""``edgecap bench``: how fast and how large models are on this machine, several in one run.

Each model file is timed in a fresh process of its own (so its peak memory is its own), one
after the other, in the same run: compare models only within one run, never against figures
from another machine or session. Per model and thread count it reports the load, ``encode``,
one ``decode_step`` at B = 1 and B = 3, whole captions (preprocess + encode + decode) greedy
and with beam 3 as ``edgecap caption`` runs them (no attention maps read back), the share of
caption time spent outside the interpreter's ``Invoke`` (and the time inside it and in
preprocessing, which no change to the search can remove), peak memory, the MACs of ``encode``
and of a step (counted from the file's own operators, :mod:`edgecap.runtime.ops`), and
``floor_ms``: the integer MACs divided by this machine's int8 rate plus the float MACs (a
float32 file, or the float32 stem of an int8 file) divided by its float32 rate, both measured
in the same process with a small layer of each kind (:mod:`edgecap.export.probe`, at two row
counts, the better rate kept: see :data:`PROBE_ROW_FACTORS`), so every
time reads as a ratio to the hardware's limit. With ``--images DIR``, the whole folder is also
captioned by ``edgecap caption DIR`` with every default, as a user runs it (photos/s, model
loading included; with ``--baseline``, that revision's too, and how many records the two share). With TensorFlow installed, the Keras float model generating greedily step by
step in eager mode (as the TensorFlow image-captioning tutorial does) is timed too.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgecap.runtime.preprocessing import load_image

PROBES = {  # kind of arithmetic → (probe file, its input shape (rows, D)): Dense(D), rows·D² MACs
    "int8": (Path(__file__).parent / "assets" / "int8_probe.tflite", (64, 512)),
    "float": (Path(__file__).parent / "assets" / "float32_probe.tflite", (256, 256)),
}
# Each probe also runs with its rows resized to 8 times the file's: the file's rows fit one
# core's cache best, but are too few to split over threads (int8, one run on this 2-core AMD
# EPYC: 49 GMAC/s at 1 thread and 55 at 2 with 64 rows; 47 and 91 with 512), and the rate is
# the better of the two, so a floor stays under what the models reach at every thread count
# (README, "Results: Flickr8k test split", the paragraph on the floor).
PROBE_ROW_FACTORS = (1, 8)


def _times_ms(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _median_ms(fn, repeats: int) -> float:
    return statistics.median(_times_ms(fn, repeats))


def _fastest_ms(fn, repeats: int) -> float:
    return min(_times_ms(fn, repeats))


def _median_and_min_ms(fn, repeats: int) -> tuple[float, float]:
    """The median and the fastest of ``repeats`` runs: the median is what a user waits, the
    minimum what the machine can do when nothing else runs (a busy machine moves the first)."""
    times = _times_ms(fn, repeats)
    return statistics.median(times), min(times)


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


def rate_gmacs(kind: str, threads: int, repeats: int = 50) -> float:
    """This machine's rate in GMAC/s for ``kind`` (``"int8"`` or ``"float"``) at ``threads``:
    the probe layer's MACs over its fastest invoke (a limit, as ``timeit`` takes the least of
    its repeats: the other process on a shared core only ever slows it), the best over the row
    counts of :data:`PROBE_ROW_FACTORS`."""
    from edgecap.runtime.interpreter import make_interpreter

    path, (rows, dim) = PROBES[kind]
    interpreter, _ = make_interpreter(path.read_bytes(), threads)
    index = interpreter.get_input_details()[0]["index"]
    rng, best = np.random.default_rng(0), 0.0
    for n in (rows * f for f in PROBE_ROW_FACTORS):
        interpreter.resize_tensor_input(index, (n, dim))
        interpreter.allocate_tensors()
        best = max(best, _fastest_rate(interpreter, n * dim * dim, repeats, rng))
    return best


LAYER_PROBES = ("conv", "conv1x1", "depthwise")  #: the layer probes' kinds (:data:`edgecap.export.probe.LAYER_PROBES`)


def _fastest_rate(interpreter, macs: int, repeats: int, rng) -> float:
    """``macs`` over the fastest invoke of an allocated one-input ``interpreter``, in GMAC/s."""
    detail = interpreter.get_input_details()[0]
    shape, dtype = detail["shape"], detail["dtype"]
    x = rng.integers(-128, 127, shape) if dtype == np.int8 else rng.normal(size=shape)
    interpreter.set_tensor(detail["index"], x.astype(dtype))
    interpreter.invoke()
    return macs / _fastest_ms(interpreter.invoke, repeats) / 1e6


def op_rates_gmacs(threads: int, step_rows: tuple[int, ...] = (1, 3), repeats: int = 50) -> dict[str, float]:
    """This machine's rate in GMAC/s of each operator kind (:func:`edgecap.runtime.ops.signature_macs_by_op`
    keys), each from its own probe: a convolution layer of each kind (:data:`LAYER_PROBES`, its
    MACs counted from the file), the dense probe at its best row count (``"<arithmetic>/fc"``,
    also for ``"other"``) and at the decode step's row counts (``"<arithmetic>/fc@B"``)."""
    from edgecap.runtime.interpreter import Signature, make_interpreter
    from edgecap.runtime.ops import signature_macs_by_op

    rng, rates = np.random.default_rng(0), {}
    for arithmetic, prefix in (("int8", "int8"), ("float", "float32")):
        rates[f"{arithmetic}/fc"] = rates[f"{arithmetic}/other"] = rate_gmacs(arithmetic, threads, repeats)
        path, (_, dim) = PROBES[arithmetic]
        interpreter, _ = make_interpreter(path.read_bytes(), threads)
        for rows in step_rows:
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], (rows, dim))
            interpreter.allocate_tensors()
            rates[f"{arithmetic}/fc@{rows}"] = _fastest_rate(interpreter, rows * dim * dim, repeats, rng)
        for kind in LAYER_PROBES:
            probe = (Path(__file__).parent / "assets" / f"{prefix}_{kind}_probe.tflite").read_bytes()
            interpreter, _ = make_interpreter(probe, threads)
            interpreter.allocate_tensors()
            macs = signature_macs_by_op(
                probe, "serving_default", Signature(interpreter, "serving_default").tensor_shape
            )
            rates[f"{arithmetic}/{kind}"] = _fastest_rate(interpreter, macs[f"{arithmetic}/{kind}"], repeats, rng)
    return rates


def per_op_floor_ms(macs: dict[str, int], rates: dict[str, float], rows: int | None = None) -> float:
    """The time ``macs`` by operator kind (:func:`edgecap.runtime.ops.signature_macs_by_op`) take, each
    kind at its own rate (:func:`op_rates_gmacs`); fully connected layers at the rate of ``rows``
    rows when given (a decode step of that many beams)."""
    total = 0.0
    for key, n in macs.items():
        rate = rates.get(f"{key}@{rows}", rates[key]) if key.endswith("/fc") and rows else rates[key]
        total += n / rate
    return total / 1e6


def floor_ms(macs: dict[str, int], rates: dict[str, float]) -> float:
    """The time ``macs`` by arithmetic (:func:`edgecap.runtime.ops.by_arithmetic`) take at ``rates`` (GMAC/s by arithmetic)."""
    return sum(macs[k] / rates[k] for k in macs) / 1e6


def bench_file(model_path: Path, threads: int, photos: list[Path], repeats: int) -> dict:
    """Every figure of one model file at one thread count (see the module docstring)."""
    from edgecap.runtime import Captioner, CaptionerOptions
    from edgecap.runtime.ops import by_arithmetic, signature_macs_by_op

    def load(beam):
        return Captioner.from_file(
            model_path, CaptionerOptions(beam_size=beam, num_threads=threads, return_attention=False, taggers=())
        )

    load_ms = _median_ms(lambda: load(1), 3)
    greedy, beam = load(1), load(3)
    pixels = [greedy.preprocess(p) for p in photos]
    encode = [_median_and_min_ms(lambda x=x: greedy.encode(x), repeats) for x in pixels]
    encode_ms, encode_min_ms = (statistics.median(e[i] for e in encode) for i in (0, 1))
    flatbuffer = model_path.read_bytes()  # the metadata after the flatbuffer is ignored
    step_ms, step_min_ms, step_macs, step_ops = {}, {}, {}, {}  # by beam count, keyed "1" and "3" (JSON keys)
    for k, captioner in ((1, greedy), (3, beam)):
        state, memory = captioner.encode(pixels[0])
        step = captioner.step_function(memory)
        tokens, state = np.full((k,), captioner.metadata.start_id, np.int32), tuple(np.repeat(s, k, 0) for s in state)
        step(tokens, state)
        step_ms[str(k)], step_min_ms[str(k)] = _median_and_min_ms(lambda: step(tokens, state), repeats * 5)
        step_ops[str(k)] = signature_macs_by_op(flatbuffer, "decode_step", captioner.step_signature.tensor_shape)
        step_macs[str(k)] = by_arithmetic(step_ops[str(k)])
    encode_ops = signature_macs_by_op(flatbuffer, "encode", greedy.encode_signature.tensor_shape)
    encode_macs = by_arithmetic(encode_ops)

    def whole(captioner, split: dict | None = None) -> tuple[float, float, float, float, float, float]:
        """Per caption, the medians over photos of: the median, the share outside Invoke, the
        words, the fastest run, the time inside Invoke and the preprocessing (ms). ``split``, if
        given, gets each key of the captions' ``timings_ms`` (preprocess, encode, tag_wait,
        decode) → its per-photo medians."""
        per_photo, fastest, outside, words, inside, preprocess = [], [], [], [], [], []
        sigs = (captioner.encode_signature, captioner.step_signature)
        for p in photos:
            captioner.caption(p)  # warm-up for this photo
            times, shares, invoke, parts = [], [], [], []
            for _ in range(repeats):
                before = sum(s.invoke_seconds for s in sigs)
                t0 = time.perf_counter()
                result = captioner.caption(p)
                total = time.perf_counter() - t0
                spent = sum(s.invoke_seconds for s in sigs) - before
                times.append(total * 1e3)
                shares.append(1.0 - spent / total)
                invoke.append(spent * 1e3)
                parts.append(result.timings_ms)
            if split is not None:
                for key in parts[0]:
                    split.setdefault(key, []).append(statistics.median(t[key] for t in parts))
            per_photo.append(statistics.median(times))
            fastest.append(min(times))
            outside.append(statistics.median(shares))
            inside.append(statistics.median(invoke))
            preprocess.append(statistics.median(t["preprocess"] for t in parts))
            words.append(len(result.tokens))
        return (
            statistics.median(per_photo),
            statistics.median(outside),
            float(np.mean(words)),
            statistics.median(fastest),
            statistics.median(inside),
            statistics.median(preprocess),
        )

    greedy_ms, greedy_out, greedy_words, greedy_min_ms, greedy_invoke_ms, greedy_prep_ms = whole(greedy)
    beam_ms, beam_out, beam_words, beam_min_ms, beam_invoke_ms, beam_prep_ms = whole(beam)
    tags = bench_tags(model_path, threads, photos, repeats, whole)
    rates = {kind: rate_gmacs(kind, threads) for kind in PROBES}
    tags["tagger_floor_ms"] = {name: floor_ms(m, rates) for name, m in tags["tagger_macs"].items()}
    op_rates = op_rates_gmacs(threads)
    return {
        "model": str(model_path),
        "name": greedy.metadata.name,
        "quantization": greedy.metadata.quantization,
        "threads": threads,
        "size_mb": model_path.stat().st_size / 1e6,
        "interpreter": greedy.backend,
        "load_ms": load_ms,
        "encode_ms": encode_ms,
        "step_ms": step_ms,
        "greedy_ms": greedy_ms,
        "beam3_ms": beam_ms,
        "min_ms": {"encode": encode_min_ms, "step": step_min_ms, "greedy": greedy_min_ms, "beam3": beam_min_ms},
        "outside_invoke_share": {"greedy": greedy_out, "beam3": beam_out},
        "invoke_ms": {"greedy": greedy_invoke_ms, "beam3": beam_invoke_ms},
        "preprocess_ms": {"greedy": greedy_prep_ms, "beam3": beam_prep_ms},
        "words": {"greedy": greedy_words, "beam3": beam_words},
        "encode_macs": sum(encode_macs.values()),
        "encode_float_macs": encode_macs["float"],
        "step_macs": {k: sum(v.values()) for k, v in step_macs.items()},
        "int8_gmacs": rates["int8"],
        "float_gmacs": rates["float"],
        "floor_ms": {
            "encode": floor_ms(encode_macs, rates),
            "step": {k: floor_ms(v, rates) for k, v in step_macs.items()},
        },
        "per_op_floor_ms": {
            "encode": per_op_floor_ms(encode_ops, op_rates),
            "step": {k: per_op_floor_ms(v, op_rates, int(k)) for k, v in step_ops.items()},
        },
        "macs_by_op": {"encode": encode_ops, "step": step_ops},
        "op_gmacs": op_rates,
        "tags": tags,
        "peak_rss_mb": _peak_rss_mb(),
    }


def bench_tags(model_path: Path, threads: int, photos: list[Path], repeats: int, whole) -> dict:
    """The taggers: each built-in tagger alone (preprocess + invoke + mapping, per photo), and
    the default pipeline's beam-3 caption (:data:`edgecap.runtime.guidance.DEFAULT_TAGGERS` on a
    second thread, then the constrained search where the rules call for it), with how many of
    the photos were constrained."""
    from edgecap.runtime import Captioner, CaptionerOptions
    from edgecap.runtime.guidance import DEFAULT_TAGGERS
    from edgecap.runtime.ops import by_arithmetic, subgraph_macs_by_op
    from edgecap.runtime.presets import tagger_names, tagger_path
    from edgecap.runtime.tagger import Tagger, TaggerOptions

    alone, macs = {}, {}
    for name in tagger_names():
        tagger = Tagger.from_preset(name, TaggerOptions(num_threads=threads))
        tagger.tag(photos[0])
        alone[name] = statistics.median(_median_ms(lambda p=p: tagger.tag(p), repeats) for p in photos)
        shapes = {d["index"]: [int(x) for x in d["shape"]] for d in tagger.interpreter.get_tensor_details()}
        macs[name] = by_arithmetic(subgraph_macs_by_op(tagger_path(name).read_bytes(), 0, shapes.__getitem__))
    pipeline = Captioner.from_file(
        model_path,
        CaptionerOptions(beam_size=3, num_threads=threads, return_attention=False, taggers=DEFAULT_TAGGERS),
    )
    split: dict[str, list[float]] = {}
    pipeline_ms, *_ = whole(pipeline, split)
    constrained = sum(bool(pipeline.caption(p).constraints) for p in photos)
    return {
        "tagger_ms": alone,
        "tagger_macs": macs,  # by arithmetic; bench_file adds "tagger_floor_ms" at this run's rates
        "pipeline": list(DEFAULT_TAGGERS),
        "pipeline_beam3_ms": pipeline_ms,
        "constrained_photos": constrained,
        # where a default-pipeline caption's time goes (Captioner.caption's timings, medians over
        # photos): decoding + resizing, the photo's encode, the wait for the taggers after it,
        # and the searches (the free one and, where the rules call for it, the constrained one)
        "pipeline_split_ms": {k: statistics.median(v) for k, v in split.items()},
    }


QUERIES = (
    "a dog runs on the beach",
    "two children play in the snow",
    "a man rides a bike down a hill",
    "a girl in a pink dress",
)


SYNTHETIC_PHOTOS = 100_000  #: photos of the synthetic index a query is timed over (besides the real one)


def synthetic_index(num_photos: int, num_regions: int, dim: int, model_digest: str, seed: int = 0):
    """A :class:`~edgecap.runtime.PhotoIndex` of random int4 region vectors and int8 pooled
    vectors: what the photos show does not change what a query costs."""
    from edgecap.runtime import PhotoIndex

    rng = np.random.default_rng(seed)
    return PhotoIndex(
        [f"synthetic/{i:07d}.jpg" for i in range(num_photos)],
        rng.integers(0, 256, (num_photos, num_regions, (dim + 1) // 2), dtype=np.uint8),
        rng.uniform(0.01, 0.02, (num_photos, num_regions)).astype(np.float32),
        rng.integers(-127, 128, (num_photos, dim), dtype=np.int8),
        rng.uniform(0.01, 0.02, (num_photos,)).astype(np.float32),
        dim,
        model_digest,
    )


def bench_retrieval_file(
    model_path: Path, threads: int, photos: list[Path], repeats: int, index_size: int = 1000
) -> dict:
    """An image–sentence alignment file: load, ``embed_image``, ``embed_sentence`` and a whole
    text query (``Retriever.search``: embed the sentence, pre-select by the pooled vectors,
    eq. 8 over the candidates, rank) over an index of ``index_size`` photos (the timed photos'
    region vectors repeated) saved and memory-mapped, its size per photo, and the same query
    over a synthetic index of ``$EDGECAP_BENCH_SYNTHETIC_PHOTOS`` photos (default
    :data:`SYNTHETIC_PHOTOS`; 0 skips it), also saved and memory-mapped."""
    import tempfile

    from edgecap.runtime import PhotoIndex, Retriever, RetrieverOptions
    from edgecap.runtime.ops import by_arithmetic, signature_macs_by_op

    options = RetrieverOptions(num_threads=threads)
    load_ms = _median_ms(lambda: Retriever.from_file(model_path, options), 3)
    retriever = Retriever.from_file(model_path, options)
    digest = retriever.metadata.flatbuffer_sha256
    pixels = [load_image(p, retriever.metadata.image_size)[None] for p in photos]
    image_ms = statistics.median(_median_ms(lambda x=x: retriever.embed_pixels(x), repeats) for x in pixels)
    regions = np.stack([retriever.embed_pixels(x) for x in pixels])
    rows = np.resize(np.arange(len(regions)), index_size)
    sentence_ms = statistics.median(_median_ms(lambda q=q: retriever.embed_sentences([q]), repeats) for q in QUERIES)

    def query_ms(index_path: Path) -> float:
        retriever.load_index(index_path)
        retriever.search(QUERIES[0])  # the first query reads the pooled vectors from the page cache
        return statistics.median(_median_ms(lambda q=q: retriever.search(q, k=5), repeats) for q in QUERIES)

    synthetic = int(os.environ.get("EDGECAP_BENCH_SYNTHETIC_PHOTOS", SYNTHETIC_PHOTOS))
    with tempfile.TemporaryDirectory(prefix="edgecap-bench-") as tmp:
        real = PhotoIndex.from_vectors([str(photos[i]) for i in rows], regions[rows], digest).save(
            Path(tmp) / "real.npz"
        )
        real_ms = query_ms(real)
        index_kb = real.stat().st_size / index_size / 1e3
        peak = _peak_rss_mb()  # before the synthetic index is made
        if synthetic:
            made = synthetic_index(synthetic, retriever.num_regions, retriever.dim, digest).save(
                Path(tmp) / "synthetic.npz"
            )
            synthetic_ms = query_ms(made)
            retriever.photo_index = None  # the map closes with the folder
    flatbuffer = model_path.read_bytes()
    image_ops = signature_macs_by_op(flatbuffer, "embed_image", retriever.image_signature.tensor_shape)
    image_macs = by_arithmetic(image_ops)
    rates = {kind: rate_gmacs(kind, threads) for kind in PROBES}
    op_rates = op_rates_gmacs(threads, step_rows=())
    out = {
        "model": str(model_path),
        "name": retriever.metadata.name,
        "task": "retrieval",
        "quantization": retriever.metadata.quantization,
        "threads": threads,
        "size_mb": model_path.stat().st_size / 1e6,
        "interpreter": retriever.backend,
        "load_ms": load_ms,
        "embed_image_ms": image_ms,
        "embed_sentence_ms": sentence_ms,
        "index_photos": index_size,
        "query_ms": real_ms,
        "index_kb_per_photo": index_kb,
        "embed_image_macs": sum(image_macs.values()),
        "embed_image_float_macs": image_macs["float"],
        "int8_gmacs": rates["int8"],
        "float_gmacs": rates["float"],
        "floor_ms": {"embed_image": floor_ms(image_macs, rates)},
        "per_op_floor_ms": {"embed_image": per_op_floor_ms(image_ops, op_rates)},
        "op_gmacs": op_rates,
        "peak_rss_mb": peak,
    }
    if synthetic:
        out["synthetic_photos"], out["synthetic_query_ms"] = synthetic, synthetic_ms
    return out


def bench_keras(run_dir: Path, photos: list[Path], repeats: int) -> dict:
    """Keras float greedy generation, eager, one ``model.decode_step`` call per word."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from edgecap.runs import load_run
    from edgecap.runtime.preprocessing import load_image

    cfg, vocab, model = load_run(run_dir)

    def generate(pixels):
        state, memory = model.split(model.encode(pixels))
        token = tf.constant([vocab.start_id], tf.int32)
        words = []
        for _ in range(cfg.decode.max_length):
            log_probs, state, _ = model.decode_step(token, state, memory)
            token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
            if int(token[0]) == vocab.end_id:
                break
            words.append(int(token[0]))
        return words

    times = []
    for p in photos:
        generate(load_image(p, model.spec.image_size)[None])
        times.append(_median_ms(lambda p=p: generate(load_image(p, model.spec.image_size)[None]), max(3, repeats // 4)))
    return {"run": str(run_dir), "greedy_ms": statistics.median(times), "tensorflow": tf.__version__}


def _in_subprocess(args: list[str], source: Path | None = None) -> dict | list:
    """Run a benchmark worker (``python -m edgecap.bench ARGS``), with the code of the source
    tree ``source`` when given (a baseline revision), and return its JSON."""
    env = None if source is None else {**os.environ, "PYTHONPATH": str(source)}
    out = subprocess.run(
        [sys.executable, "-m", "edgecap.bench", *args], capture_output=True, text=True, env=env, cwd=source
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker {' '.join(args[:2])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def checkout(revision: str, into: Path) -> Path:
    """The source tree of git ``revision`` of this checkout, extracted into ``into`` (``git
    archive``: no work tree or branch is touched). Its built-in files are that revision's
    (``edgecap/released`` links to its ``export/``, as in a wheel).

    Raises:
        ValueError: edgecap is not running from a git checkout, or no such revision.
    """
    import tarfile

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        raise ValueError(f"--baseline needs a git checkout of edgecap; {root} is not one")
    known = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], capture_output=True
    )
    if known.returncode != 0:
        raise ValueError(f"--baseline {revision}: no such git revision in {root}")
    proc = subprocess.Popen(["git", "-C", str(root), "archive", revision], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        tar.extractall(into, filter="data")
    if proc.wait() != 0:
        raise ValueError(f"--baseline {revision}: git archive failed")
    # its built-in files are its own: an editable install maps the package edgecap.released to
    # this checkout's export/, and a package found in the tree itself comes first
    released = into / "edgecap" / "released"
    if (into / "export").is_dir() and not released.exists():
        released.symlink_to(Path("..") / "export", target_is_directory=True)
    return into


CAPTION_DIR_RUNS = 2  #: runs of ``edgecap caption DIR`` per tree; the fastest counts


def caption_dir_run(
    folder: Path, source: Path | None = None, options: tuple[str, ...] = ()
) -> tuple[float, list[dict]]:
    """One ``edgecap caption FOLDER --json`` with every default (model, tagger, workers) but
    ``options``, as a user runs it: a fresh process, model loading included. With ``source``,
    the code and built-in files of that tree (a baseline revision). A photo that cannot be read
    is an error record, counted like the others.

    Returns:
        ``(seconds, records)``: wall-clock seconds, and its records without ``timings_ms``.

    Raises:
        RuntimeError: the command failed, or wrote no record (its last lines of stderr).
    """
    env = None if source is None else {**os.environ, "PYTHONPATH": str(source)}
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "edgecap.cli", "caption", str(folder), "--json", *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=source,
    )
    seconds = time.perf_counter() - t0
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode not in (0, 2) or not records:  # 2: some record is an error record
        raise RuntimeError(f"edgecap caption {folder} failed:\n{out.stderr[-3000:]}")
    for record in records:
        record.pop("timings_ms", None)
    return seconds, records


def caption_dir_rate(folder: Path, source: Path | None = None, runs: int = CAPTION_DIR_RUNS) -> dict:
    """Photos per second of ``edgecap caption FOLDER`` with its defaults: the fastest of ``runs``
    (:func:`caption_dir_run`), ``{"photos", "seconds", "photos_per_s", "records"}``."""
    best, records = float("inf"), []
    for _ in range(runs):
        seconds, records = caption_dir_run(folder, source)
        best = min(best, seconds)
    return {"photos": len(records), "seconds": best, "photos_per_s": len(records) / best, "records": records}


def _same_records(a: list[dict], b: list[dict]) -> dict:
    """How many records two runs share, whole and by part (by photo)."""
    theirs = {r["image"]: r for r in b}
    pairs = [(r, theirs.get(r["image"], {})) for r in a]
    return {
        "records": sum(x == y for x, y in pairs),
        "captions": sum(x["caption"] == y.get("caption") for x, y in pairs),
        "tags": sum([t["word"] for t in x["tags"]] == [t["word"] for t in y.get("tags", [])] for x, y in pairs),
        "constraints": sum(x["constraints"] == y.get("constraints") for x, y in pairs),
        "of": len(pairs),
    }


def _baseline_path(model: Path, source: Path) -> Path:
    """A built-in file's counterpart in the baseline tree ``source``; any other file as it is."""
    from edgecap.paths import released_dir

    model = Path(model).resolve()
    released = released_dir().resolve()
    return source / "export" / model.name if model.parent == released else model


def run_bench(
    model_paths: list[Path],
    thread_counts: list[int],
    image_dir=None,
    repeats: int = 20,
    keras_run: str | Path | None = None,
    baseline: str | None = None,
) -> dict:
    """All figures as a dict: ``{"machine", "photos", "photo_folder", "repeats", "results": [one dict per model and
    thread count], "caption_dir": {...} (with ``image_dir``), "keras": {...} (or "keras_skipped")}``.

    Args:
        model_paths: ``.tflite`` files, timed one after the other in this run.
        thread_counts: interpreter threads to time each model with.
        keras_run: run directory of the Keras baseline (default: the released checkpoint);
            ``"none"`` skips it. It is skipped too when no captioner is timed, and a baseline
            that fails is reported as skipped, with its error, beside the files' figures.
        baseline: a git revision: each model is timed a second time, in this run, with the code
            and the built-in files of that revision (rows with ``"baseline": revision``).
        image_dir: the photos (the first 20 are timed one by one); given, the whole folder is
            also captioned by ``edgecap caption DIR`` with its defaults (:func:`caption_dir_rate`,
            and the baseline's, with how many records the two share).

    Raises:
        FileNotFoundError: no photos. RuntimeError: a worker process failed.
    """
    from edgecap.paths import released_dir

    photos = _photos(image_dir)
    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_cpu_name()}, Python {platform.python_version()}",
        "photos": len(photos),
        "photo_folder": str(photos[0].parent),  # Flickr8k dev, or examples/ when ../shared is absent
        "repeats": repeats,
        "results": [],
    }
    photo_args = [str(p.resolve()) for p in photos]  # absolute: a baseline's worker runs in its own tree
    thread_arg = ",".join(map(str, thread_counts))
    for path in model_paths:
        report["results"] += _in_subprocess(["--worker", str(path), thread_arg, str(repeats), *photo_args])
    folder = Path(image_dir).resolve() if image_dir else None
    if folder is not None:  # the whole folder through `edgecap caption DIR`, defaults and all
        rate = caption_dir_rate(folder)
        records = rate.pop("records")
        report["caption_dir"] = {"folder": str(folder), **rate}
    if baseline:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgecap-baseline-") as tmp:
            source = checkout(baseline, Path(tmp))
            for path in model_paths:
                rows = _in_subprocess(
                    ["--worker", str(_baseline_path(path, source)), thread_arg, str(repeats), *photo_args], source
                )
                report["results"] += [{**row, "baseline": baseline} for row in rows]
            if folder is not None:
                old = caption_dir_rate(folder, source)
                report["caption_dir"]["baseline"] = {
                    "revision": baseline,
                    "seconds": old["seconds"],
                    "photos_per_s": old["photos_per_s"],
                    "same": _same_records(records, old["records"]),
                }
    keras_dir = None if str(keras_run) == "none" else Path(keras_run) if keras_run else released_dir()
    if keras_dir is None:
        report["keras_skipped"] = "--keras-run none"
    elif not any("greedy_ms" in r for r in report["results"]):
        report["keras_skipped"] = (
            "no captioner among the timed files (the Keras baseline is a captioner's greedy caption)"
        )
    elif not (keras_dir / "best.weights.h5").is_file():
        report["keras_skipped"] = f"{keras_dir}: no best.weights.h5"
    else:
        try:
            import tensorflow  # noqa: F401
        except ImportError as e:
            report["keras_skipped"] = f"TensorFlow not installed ({e})"
        else:
            try:
                report["keras"] = _in_subprocess(["--keras", str(keras_dir), str(repeats), *photo_args])
            except RuntimeError as e:  # the files' figures stand without it
                report["keras_skipped"] = str(e).strip().splitlines()[-1]
    return report


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _label(row: dict) -> str:
    """A row's model file name, ``@REVISION`` for a baseline row, cut to 38 characters."""
    name = Path(row["model"]).name
    if "baseline" in row:
        tag = f"@{row['baseline']}"
        name = name[: 38 - len(tag)] + tag
    return name[:38]


def _against_baseline(r: dict) -> list[str]:
    """One line per baseline row: the same file's figures now against the baseline's."""
    lines = []
    now = {(Path(t["model"]).name, t["threads"]): t for t in r["results"] if "baseline" not in t}
    for old in (t for t in r["results"] if "baseline" in t):
        new = now.get((Path(old["model"]).name, old["threads"]))
        if new is None:
            continue
        head = f"{Path(new['model']).name} at {new['threads']} thread(s), now against {old['baseline']}:"
        if "beam3_ms" in new and "beam3_ms" in old:
            share = new["outside_invoke_share"]["beam3"], old["outside_invoke_share"]["beam3"]
            lines.append(
                f"{head} beam-3 caption {new['beam3_ms']:.2f} against {old['beam3_ms']:.2f} ms ({new['beam3_ms'] / old['beam3_ms']:.2f}x; "
                f"outside Invoke {share[0]:.1%} against {share[1]:.1%}), greedy {new['greedy_ms']:.2f} against {old['greedy_ms']:.2f} ms, "
                f"encode {new['encode_ms']:.2f} against {old['encode_ms']:.2f} ms"
            )
            if "invoke_ms" in new:  # what no change to the search can remove
                fixed = new["invoke_ms"]["beam3"] + new["preprocess_ms"]["beam3"]
                lines.append(
                    f"{'':4}its beam-3 Invoke and preprocessing alone: {new['invoke_ms']['beam3']:.2f} + "
                    f"{new['preprocess_ms']['beam3']:.2f} ms, {fixed / old['beam3_ms']:.2f}x the baseline's whole caption"
                )
            if "tags" in new and "tags" in old:  # the default pipeline as each revision ships it
                a, b = new["tags"]["pipeline_beam3_ms"], old["tags"]["pipeline_beam3_ms"]
                lines.append(
                    f"{'':4}the default pipeline (beam 3, with tags): {a:.2f} against {b:.2f} ms ({a / b:.2f}x)"
                )
        elif "query_ms" in new and "query_ms" in old:
            lines.append(
                f"{head} text query over {new['index_photos']} photos {new['query_ms']:.2f} against {old['query_ms']:.2f} ms "
                f"({new['query_ms'] / old['query_ms']:.2f}x)"
            )
    return lines


def format_report(r: dict) -> str:
    folder = f" in {r['photo_folder']}" if "photo_folder" in r else ""  # not in reports from before it
    lines = [
        f"{r['photos']} photos{folder} x {r['repeats']} runs, {r['machine']}; captions as `edgecap caption` runs them (no attention maps read back)"
    ]
    if any(t.get("task") != "retrieval" for t in r["results"]):
        lines.append(
            "medians of the runs, and below each model the minima (the machine's best, when nothing else ran) and the per-op floor "
            "(each operator kind at its own probe's rate, fully connected layers at the step's rows)"
        )
        lines.append(
            "model                                  thr  size MB  encode ms (floor)  step ms B=1 / B=3 (floor)        greedy ms  beam-3 ms (outside invoke)  MACs encode (float) / step B=1  GMAC/s int8 / float  peak RSS MB"
        )
    for t in (t for t in r["results"] if t.get("task") != "retrieval"):
        fl = t["floor_ms"]
        lines.append(
            f"{_label(t):38} {t['threads']:>4} {t['size_mb']:8.2f} {t['encode_ms']:9.2f} ({fl['encode']:5.2f})  "
            f"{t['step_ms']['1']:6.3f} / {t['step_ms']['3']:6.3f} ({fl['step']['1']:.3f} / {fl['step']['3']:.3f})  {t['greedy_ms']:9.2f}  {t['beam3_ms']:9.2f} ({t['outside_invoke_share']['beam3']:5.1%})        "
            f"{t['encode_macs'] / 1e6:7.1f}M ({t['encode_float_macs'] / t['encode_macs']:4.0%}) / {t['step_macs']['1'] / 1e6:5.2f}M  {t['int8_gmacs']:8.1f} / {t['float_gmacs']:5.1f}  {t['peak_rss_mb']:8.0f}"
        )
        m = t["min_ms"]
        lines.append(
            f"{'':38} {'':>4} {'minima':>8} {m['encode']:9.2f} {'':8} {m['step']['1']:6.3f} / {m['step']['3']:6.3f} {'':17} {m['greedy']:9.2f}  {m['beam3']:9.2f}"
        )
        if "per_op_floor_ms" in t:  # not in the figures of a baseline revision from before it
            p = t["per_op_floor_ms"]
            lines.append(
                f"{'':38} {'':>4} {'per-op floor':>12} {p['encode']:5.2f} {'':8} {p['step']['1']:6.3f} / {p['step']['3']:6.3f}"
            )
        if "invoke_ms" in t:  # not in the figures of a baseline revision from before it
            i, pre = t["invoke_ms"]["beam3"], t["preprocess_ms"]["beam3"]
            lines.append(
                f"{'':38} {'':>4} beam-3 caption: Invoke {i:.2f} ms, preprocessing {pre:.2f} ms "
                f"({pre / t['beam3_ms']:.1%}), search and tensor copies {t['beam3_ms'] - i - pre:.2f} ms (medians)"
            )
    for t in (t for t in r["results"] if "tags" in t):
        g = t["tags"]
        lines.append(
            f"{_label(t):38} {t['threads']:>4}  with tags ({', '.join(g['pipeline'])}): beam-3 {g['pipeline_beam3_ms']:.2f} ms, "
            f"{g['pipeline_beam3_ms'] / t['beam3_ms']:.2f}x the model alone ({g['constrained_photos']} of {r['photos']} photos constrained); "
            "taggers alone: "
            + ", ".join(
                f"{n} {ms:.2f} ms" + (f" (floor {g['tagger_floor_ms'][n]:.2f})" if "tagger_floor_ms" in g else "")
                for n, ms in g["tagger_ms"].items()
            )
        )
        if "pipeline_split_ms" in g:  # not in the figures of a baseline revision from before it
            names = {
                "preprocess": "decode + resize",
                "encode": "encode",
                "tag_wait": "waiting for the tags",
                "decode": "search(es)",
            }
            lines.append(
                f"{'':38} {'':>4}  with tags, where a caption's time goes (medians): "
                + ", ".join(f"{names.get(k, k)} {ms:.2f} ms" for k, ms in g["pipeline_split_ms"].items())
            )
    retrieval = [t for t in r["results"] if t.get("task") == "retrieval"]
    if retrieval:
        lines.append(
            "retrieval model                        thr  size MB  embed_image ms (floor, per-op floor)  embed_sentence ms  text query over N photos ms  index KB/photo  peak RSS MB"
        )
        for t in retrieval:
            synthetic = (
                f"; over {t['synthetic_photos']:,} synthetic photos {t['synthetic_query_ms']:.2f} ms"
                if "synthetic_query_ms" in t
                else ""
            )
            lines.append(
                f"{_label(t):38} {t['threads']:>4} {t['size_mb']:8.2f} {t['embed_image_ms']:10.2f} ({t['floor_ms']['embed_image']:5.2f}, {t.get('per_op_floor_ms', {}).get('embed_image', float('nan')):5.2f})      {t['embed_sentence_ms']:17.3f}  "
                f"{t['query_ms']:17.2f} (N = {t['index_photos']})  {t.get('index_kb_per_photo', float('nan')):14.1f}  {t['peak_rss_mb']:11.0f}{synthetic}"
            )
    lines += _against_baseline(r)
    if "caption_dir" in r:
        c = r["caption_dir"]
        lines.append(
            f"edgecap caption DIR (every default) on {c['photos']} photos in {c['folder']}: {c['photos_per_s']:.1f} photos/s "
            f"({c['seconds']:.2f} s with loading, the fastest of {CAPTION_DIR_RUNS})"
        )
        if "baseline" in c:
            b, same = c["baseline"], c["baseline"]["same"]
            lines.append(
                f"    against {b['revision']}: {b['photos_per_s']:.1f} photos/s, {c['photos_per_s'] / b['photos_per_s']:.2f}x; "
                f"the same records on {same['records']} of {same['of']} photos (captions {same['captions']}, "
                f"tag words {same['tags']}, constraints {same['constraints']})"
            )
    if r["results"]:
        lines.append(f"interpreter: {r['results'][0]['interpreter']}")
    if "keras" in r:
        k = r["keras"]["greedy_ms"]
        best = min((t["greedy_ms"] for t in r["results"] if "greedy_ms" in t), default=float("nan"))
        lines.append(
            f"Keras float greedy (eager, TF {r['keras']['tensorflow']}, {r['keras']['run']}): {k:.1f} ms per caption; the fastest TFLite greedy caption above is {k / best:.1f}x faster"
        )
    elif "keras_skipped" in r:
        lines.append(f"Keras baseline skipped: {r['keras_skipped']}")
    return "\n".join(lines)


def _worker(argv: list[str]) -> None:
    """``--worker MODEL THREADS REPEATS PHOTO...`` or ``--keras RUN REPEATS PHOTO...``: print one JSON line."""
    if argv[0] == "--worker":
        model, threads, repeats, photos = (
            Path(argv[1]),
            [int(t) for t in argv[2].split(",")],
            int(argv[3]),
            [Path(p) for p in argv[4:]],
        )
        from edgecap.models import registry
        from edgecap.runtime.metadata import read_file

        timer = registry.get_task(read_file(model, check_digest=False)[1].task).stage("bench")
        out = [timer(model, t, photos, repeats) for t in threads]
    else:
        out = bench_keras(Path(argv[1]), [Path(p) for p in argv[3:]], int(argv[2]))
    print(json.dumps(out))


if __name__ == "__main__":
    _worker(sys.argv[1:])
