"""The ``edgecap`` command. Heavy imports (TensorFlow) happen inside the commands that need them,
so ``edgecap caption`` runs on a device with only the runtime installed."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

import click

from edgecap import __version__
from edgecap.runtime.preprocessing import DEFAULT_MAX_PIXELS

#: The training module of each registry task (:class:`edgecap.models.registry.Architecture`).
TRAINERS = {"captioning": "edgecap.training.trainer", "retrieval": "edgecap.training.ranking", "attributes": "edgecap.training.attributes"}

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _fail(message: str, code: int = 1):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _tensorflow_command() -> None:
    """Quiet TensorFlow's C++ logs, and say which extra to install if it is missing."""
    import importlib.util
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    missing = [m for m in ("tensorflow", "keras") if importlib.util.find_spec(m) is None]
    if missing:
        _fail(f"this command trains or converts models and needs {' and '.join(missing)}: pip install 'edgecap[train]' "
              "(captioning with an exported .tflite needs only the base install)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecap")
def main():
    """Attention image captioners, trained with Keras and run on device with TFLite."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# ------------------------------------------------------------------------------------- train
@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config (default: the shipped Flickr8k config, or the run's own when resuming).")
@click.option("--run-dir", type=click.Path(file_okay=False), default="runs/show_attend_tell", show_default=True, help="Where checkpoints, logs and the config go; an existing run resumes.")
@click.option("--data-root", help="Dataset folder (overrides data.root and $EDGECAP_DATA_ROOT).")
@click.option("--encoder-weights", help="Encoder weights file (overrides model.encoder_weights and $EDGECAP_ENCODER_WEIGHTS).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Feature cache folder (default $EDGECAP_CACHE_DIR or ~/.cache/edgecap).")
@click.argument("overrides", nargs=-1)
def train(config_path, run_dir, data_root, encoder_weights, cache_dir, overrides):
    """Train a captioner (or the image–sentence alignment model). OVERRIDES are section.key=value, e.g. train.epochs=5."""
    _tensorflow_command()
    from edgecap.config import Config, ConfigError, default_config

    try:  # the config is read and checked before TensorFlow is imported: its errors show at once
        source = config_path or (Path(run_dir) / "config.toml")
        if config_path or Path(source).is_file():
            cfg = Config.load(source)
        else:
            cfg, source = default_config(), "the shipped config"
        if encoder_weights:
            overrides = (*overrides, f'model.encoder_weights="{encoder_weights}"')
        cfg.apply_overrides(list(overrides))
        cfg.validate(" ".join([str(source), *overrides]))
        from edgecap.models import registry

        module = importlib.import_module(TRAINERS[registry.get(cfg.model.architecture).task])
        best = module.train(cfg, run_dir, data_root, cache_dir)
    except (ConfigError, ValueError, OSError) as e:
        _fail(str(e))
    click.echo(f"best checkpoint: {best}")


# ---------------------------------------------------------------------------------- evaluate
@main.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("--split", type=click.Choice(["train", "dev", "test"]), default="test", show_default=True)
@click.option("--beam-size", type=click.IntRange(1), default=None, help="Beams, 1 = greedy (default: the model's, chosen on dev).")
@click.option("--length-penalty", type=float, default=None, help="α of log P / length^α (default: the model's, chosen on dev).")
@click.option("--no-repeat-ngram", type=click.IntRange(0), default=None, help="Never repeat an n-gram of this size, 0 = off (default: the model's).")
@click.option("--max-length", type=click.IntRange(1), default=None, help="Most words per caption (default: the model's).")
@click.option("--data-root", help="Dataset folder (overrides the config and $EDGECAP_DATA_ROOT).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="Dataset config for a .tflite SOURCE.")
@click.option("--limit", type=click.IntRange(0), default=0, help="First N images only.")
@click.option("--threads", type=click.IntRange(1), default=None, help="Interpreter threads (.tflite SOURCE).")
@click.option("--reference-kernels", is_flag=True, help="Run the interpreter's reference kernels (.tflite SOURCE; see caption --help).")
@click.option("--spice", is_flag=True, help="Also compute SPICE (needs a CoreNLP download: fails offline).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write metrics and captions as JSON here.")
def evaluate(source, split, beam_size, length_penalty, no_repeat_ngram, max_length, data_root, config_path, limit, threads, reference_kernels, spice, output):
    """Score SOURCE (a run directory or a .tflite file) with BLEU, METEOR, ROUGE-L, CIDEr-D; an
    image–sentence alignment model with R@1/5/10 and median rank in both directions; an
    attribute detector run with mAP, P@10 and R@10 beside the most frequent attributes."""
    _tensorflow_command()
    from edgecap.evaluation.evaluate import evaluate as run_eval, evaluate_attributes, evaluate_retrieval, write_report

    try:
        task = _task(source)
        if task == "attributes":
            report = evaluate_attributes(source, split, data_root, limit)
        elif task == "retrieval":
            report = evaluate_retrieval(source, split, data_root, config_path, limit, threads, reference_kernels)
        else:
            report = run_eval(source, split, beam_size, length_penalty, max_length, data_root, config_path, limit, threads, spice, no_repeat_ngram, reference_kernels)
    except (ValueError, OSError, RuntimeError) as e:
        _fail(str(e))
    r = report
    if task == "attributes":
        k = r["k"]
        click.echo(f"{source} on {split} ({r['images']} images, {r['attributes']} attributes):")
        for name, m in (("detector", r["metrics"]), (f"{k} most frequent", r["frequency_baseline"])):
            click.echo(f"  {name:18}  mAP {m['mAP']:.1f}  P@{k} {m[f'P@{k}']:.1f}  R@{k} {m[f'R@{k}']:.1f}")
    elif task == "retrieval":
        click.echo(f"{source} on {split} ({r['images']} images, {r['sentences']} sentences):")
        for direction in ("annotation", "search"):
            ours = "  ".join(f"{k.split(' ', 1)[1]} {v:.1f}" for k, v in r["metrics"].items() if k.startswith(direction))
            paper = "  ".join(f"{k.split(' ', 1)[1]} {v:.1f}" for k, v in r["paper_flickr8k_brnn"].items() if k.startswith(direction))
            click.echo(f"  image {direction:10}  {ours}   (paper, Flickr8K BRNN: {paper})")
    else:
        click.echo(f"{source} on {split} ({r['images']} images, beam {r['beam_size']}, length penalty {r['length_penalty']}, no-repeat n-gram {r['no_repeat_ngram_size']}):")
        click.echo("  " + "  ".join(f"{k} {v:.2f}" for k, v in r["metrics"].items()))
    if output:
        write_report(report, output)
        click.echo(f"wrote {output}")


def _task(source: str) -> str:
    """The task of SOURCE (run directory or .tflite file): ``captioning``, ``retrieval`` or ``attributes``."""
    path = Path(source)
    if path.is_dir():
        from edgecap.config import Config
        from edgecap.models import registry

        return registry.get(Config.load(path / "config.toml").model.architecture).task if (path / "config.toml").is_file() else "captioning"
    from edgecap.runtime.metadata import ModelFileError, read_file

    try:
        return read_file(path, check_digest=False)[1].task
    except ModelFileError:
        return "captioning"  # the captioning path reports it


@main.command("select-decoding")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--beam-sizes", default="1,3,5", show_default=True)
@click.option("--length-penalties", default="0,0.25,0.5,0.75,1", show_default=True)
@click.option("--no-repeat-ngram-sizes", default="0,3", show_default=True, help="n-gram blocking sizes to try (0 = off).")
@click.option("--data-root", help="Dataset folder.")
def select_decoding(run_dir, beam_sizes, length_penalties, no_repeat_ngram_sizes, data_root):
    """Choose beam size, length penalty and n-gram blocking on the dev split (CIDEr-D); saved as RUN_DIR/decoding.json."""
    _tensorflow_command()
    from edgecap.evaluation.evaluate import select_decoding as run_select

    try:
        out = run_select(run_dir, [int(x) for x in beam_sizes.split(",")], [float(x) for x in length_penalties.split(",")], "dev", data_root, [int(x) for x in no_repeat_ngram_sizes.split(",")])
    except (ValueError, OSError, RuntimeError) as e:
        _fail(str(e))
    click.echo(f"selected beam size {out['beam_size']}, length penalty {out['length_penalty']}, no-repeat n-gram {out['no_repeat_ngram_size']}")


# ------------------------------------------------------------------------------------ export
@main.command()
@click.argument("source", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--float32", "mode", flag_value="float32", default=True, help="Float32 weights and activations (default).")
@click.option("--float16", "mode", flag_value="float16", help="Float16 weights.")
@click.option("--dynamic", "mode", flag_value="dynamic", help="Int8 weights, float activations (dynamic range).")
@click.option("--int8", "mode", flag_value="int8", help="Int8 weights and activations, calibrated on training photos; the encoder's stem stays float32 (MobileNetV2: Conv1 and blocks 0-3), unless --full-integer.")
@click.option("--full-integer", is_flag=True, help="With --int8: every op in int8, the encoder's stem too (for integer-only accelerators; less accurate).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Output file (default: ./<model name>_<mode>.tflite, e.g. show_attend_tell_flickr8k_int8.tflite).")
@click.option("--data-root", help="Dataset folder for calibration (training photos) and verification (dev photos); default: the run's data.root or $EDGECAP_DATA_ROOT. Without it, the example photos are used and an int8 export usually fails verification.")
@click.option("--calibration-images", type=click.IntRange(1), default=300, show_default=True)
@click.option("--verify-images", type=click.IntRange(1), default=100, show_default=True)
@click.option("--version", "model_version", default=__version__, show_default=True, help="Version string stored in the model metadata.")
def export(source, mode, output, data_root, calibration_images, verify_images, model_version, full_integer):
    """Export SOURCE (a run directory; default: the released model's checkpoint) to one .tflite file
    with `encode` and `decode_step` signatures, then verify it against Keras.

    The file appears at its path only once verification passed. OUTPUT.verify.json beside it
    holds the verification report; a failed export is kept as OUTPUT.rejected, which the
    runtime refuses to load."""
    _tensorflow_command()
    from edgecap.export.command import run_export
    from edgecap.paths import released_dir

    source = Path(source) if source else released_dir()
    try:
        if full_integer and mode != "int8":
            raise ValueError("--full-integer applies to --int8 only")
        result = run_export(source, mode, output, data_root, calibration_images, verify_images, model_version, full_integer)
    except (ValueError, OSError, RuntimeError) as e:
        _fail(str(e))
    click.echo(result.report.summary())
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB)")


# ----------------------------------------------------------------------------------- caption
def _images(paths):
    """``(path, None)`` for each photo to caption, ``(path, error)`` for each argument that cannot
    give any: checked when its turn comes, so one bad argument does not stop the others."""
    for p in map(Path, paths):
        if str(p) == "-" and not p.exists():
            yield p, "-: photos are not read from standard input; give a file or folder path"
            continue
        try:
            if not p.is_dir():
                yield p, None  # a file, or a path whose problem load_image reports with its cause
                continue
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and not q.is_dir())
        except OSError as e:
            yield p, f"{p}: {e.strerror or e}"
            continue
        if not found:
            yield p, f"{p}: no images in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        yield from ((q, None) for q in found)


def _json_line(image, result=None, error=None) -> str:
    """One JSON Lines record: the same keys for a caption and a failure."""
    if result is None:
        return json.dumps({"image": str(image), "caption": None, "log_prob": None, "nbest": [], "attributes": [], "timings_ms": {}, "error": error})
    return json.dumps({"image": str(image), "caption": result.text, "log_prob": result.log_prob, "nbest": [{"caption": c.text, "log_prob": c.log_prob} for c in result.nbest],
                       "attributes": [{"word": w, "probability": round(p, 4)} for w, p in result.attributes], "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()}, "error": None})


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", help="A built-in model's name (`edgecap models`) or a .tflite file from `edgecap export` (default: show_attend_tell_flickr8k).")
@click.option("--beam-size", type=click.IntRange(1), default=None, help="Beams (1 = greedy; default: the model's, chosen on dev).")
@click.option("--length-penalty", type=float, default=None, help="α of log P / length^α (default: the model's, chosen on dev).")
@click.option("--max-length", type=click.IntRange(1), default=None, help="Most words per caption (default: the model's).")
@click.option("--no-repeat-ngram", type=click.IntRange(0), default=None, help="Never repeat an n-gram of this size, 0 = off (default: the model's).")
@click.option("--nbest", type=click.IntRange(1), default=1, show_default=True, help="Captions per image (<= beam size).")
@click.option("--threads", type=click.IntRange(1), default=None, help="Interpreter threads.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one object per photo, with the same keys for every photo: image, caption, log_prob, nbest, attributes (word and probability; empty unless the model detects attributes), timings_ms, error (caption and log_prob null, error the message, for a photo that could not be read).")
@click.option("--attributes", "show_attributes", is_flag=True, help="Also print the visual attributes the model detects in each photo, with their probabilities (semantic attention models).")
@click.option("--attention-dir", type=click.Path(file_okay=False), help="Write a figure of each word's attention map here (needs matplotlib).")
@click.option("--max-pixels", type=click.IntRange(1), default=DEFAULT_MAX_PIXELS, show_default=True, help="Refuse photos with more pixels than this once decoded (JPEGs far larger than the model input are decoded at reduced size first).")
@click.option("--skip-digest", is_flag=True, help="Do not compare the model's weights with the SHA-256 digest in its metadata at load (saves one SHA-256 pass over the file; a damaged file is then not detected).")
@click.option("--reference-kernels", is_flag=True, help="Run the interpreter's reference kernels: slower, but the same outputs, hence the same captions, on x86 and aarch64 (the optimised int8 kernels may round differently on each CPU). A portability check: on the int8 models the captions are worse than with the default kernels (see the README).")
@click.option("--verbose", "-v", is_flag=True, help="Say which interpreter runs the model, and the timings.")
def caption(images, model_path, beam_size, length_penalty, max_length, no_repeat_ngram, nbest, threads, as_json, show_attributes, attention_dir, max_pixels, skip_digest, reference_kernels, verbose):
    """Caption IMAGES (files or folders) with a TFLite model, without TensorFlow.

    Every photo that can be read is captioned; each one that cannot (and each folder without
    images) is named on stderr with its cause, and the exit status is then 2."""
    from edgecap.runtime import Captioner, CaptionerOptions, ImageLoadError, ModelFileError, NoInterpreterError
    from edgecap.runtime.presets import resolve_model

    try:
        path = resolve_model(model_path)
        options = CaptionerOptions(beam_size=beam_size, length_penalty=length_penalty, no_repeat_ngram_size=no_repeat_ngram, max_length=max_length, num_results=nbest, num_threads=threads,
                                   return_attention=bool(attention_dir), quiet=not verbose, check_digest=not skip_digest, max_pixels=max_pixels, reference_kernels=reference_kernels)
        captioner = Captioner.from_file(path, options)
    except (ModelFileError, NoInterpreterError, ValueError) as e:
        _fail(str(e))
    if show_attributes and captioner.contract.items is None:
        _fail(f"--attributes: {path} detects no attributes (a {captioner.metadata.architecture} model); semantic attention models do")
    if verbose:
        m = captioner.metadata
        click.echo(f"model {path}: {m.name} {m.version} ({m.quantization}), interpreter: {captioner.backend}", err=True)
    failures = 0
    for image, error in _images(images):
        result = None
        if error is None:
            try:
                result = captioner.caption(image)
            except ImageLoadError as e:
                error = str(e)
            except ModelFileError as e:  # the model, not the photo: nothing else will caption
                _fail(str(e))
        if error is not None:
            click.echo(f"error: {error}", err=True)
            if as_json:
                click.echo(_json_line(image, error=error))
            failures += 1
            continue
        if as_json:
            click.echo(_json_line(image, result))
        else:
            click.echo(f"{image}: {result.text}")
            for c in result.nbest[1:]:
                click.echo(f"    {c.text}  ({c.log_prob:.2f})")
            if show_attributes:
                click.echo("    attributes: " + ", ".join(f"{w} {p:.2f}" for w, p in result.attributes))
        if verbose:
            click.echo("    " + ", ".join(f"{k} {v:.1f} ms" for k, v in result.timings_ms.items()), err=True)
        if attention_dir:
            from edgecap.visualize import save_attention_figure

            try:
                save_attention_figure(image, result, Path(attention_dir) / f"{Path(image).stem}_attention.png")
            except ValueError as e:
                _fail(f"--attention-dir: {e}")
    if failures:
        sys.exit(2)


# ------------------------------------------------------------------------------------ search
RETRIEVAL_PRESET = "visual_semantic_alignment_flickr8k"


def _photo_list(paths) -> list[Path]:
    """Every photo of the given files and folders, sorted by path (the rows of a score matrix).

    Raises:
        ValueError: a path that does not exist, or a folder without photos (named).
    """
    photos = []
    for image, error in _images(paths):
        if error is not None:
            raise ValueError(error)
        if not image.is_file():
            raise ValueError(f"{image}: no such photo or folder")
        photos.append(image)
    if not photos:
        raise ValueError("no photos given")
    return sorted(set(photos))


def _writable(path: str, what: str) -> None:
    """Raises ValueError naming ``path`` when its folder does not exist or is not writable (before any long work)."""
    import os

    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK) or Path(path).is_dir():
        raise ValueError(f"{what} {path}: cannot be written (no such folder, not writable, or a folder)")


@main.command()
@click.argument("queries", nargs=-1)
@click.option("--model", "model_path", default=RETRIEVAL_PRESET, show_default=True, help="A built-in alignment model's name or a .tflite file from `edgecap export`.")
@click.option("--images", "images", multiple=True, type=click.Path(), help="Photos or folders to search (repeatable); rows of --scores are these photos sorted by path.")
@click.option("--index", "index_path", type=click.Path(dir_okay=False), help="Photo index (.npz): with --images, written here after indexing; without, read from here instead of indexing.")
@click.option("--texts", type=click.Path(exists=True, dir_okay=False), help="A text file of queries, one a line (added to QUERIES).")
@click.option("--scores", "scores_path", type=click.Path(dir_okay=False), help="Write the (num_images, num_texts) float32 score matrix here (.npy): rows = photos sorted by path, columns = QUERIES then the lines of --texts.")
@click.option("-k", "--top", type=click.IntRange(1), default=5, show_default=True, help="Photos shown per query.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one object per query with its top photos and scores.")
@click.option("--threads", type=click.IntRange(1), default=None, help="Interpreter threads.")
@click.option("--reference-kernels", is_flag=True, help="Run the interpreter's reference kernels (see caption --help).")
@click.option("--verbose", "-v", is_flag=True, help="Timings of indexing and of each query.")
def search(queries, model_path, images, index_path, texts, scores_path, top, as_json, threads, reference_kernels, verbose):
    """Find the photos that fit a sentence (image search, Karpathy & Fei-Fei 2015), without TensorFlow.

    \b
      edgecap search --images photos/ "a dog runs on the beach"
      edgecap search --images photos/ --index photos.npz          # index once
      edgecap search --index photos.npz "two children play in the snow"
      edgecap search --images test/ --texts sentences.txt --scores scores.npy
    """
    import time

    import numpy as np

    from edgecap.runtime import ImageLoadError, ModelFileError, NoInterpreterError, PhotoIndexError, QueryError, Retriever, RetrieverOptions
    from edgecap.runtime.presets import resolve_model

    try:
        if texts:
            try:
                lines = [line.strip() for line in Path(texts).read_text(encoding="utf-8").splitlines()]
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"--texts {texts}: cannot read it as UTF-8 text ({e})") from None
            queries = (*queries, *[line for line in lines if line])
            if not lines or not any(lines):
                raise ValueError(f"--texts {texts}: no sentences in this file")
        if not queries and not (images and index_path):
            raise ValueError("give a query (or --texts FILE)" if (images or index_path) else "give photos to search (--images DIR or --index FILE.npz) and a query")
        if not images and not index_path:
            raise ValueError("give photos to search: --images DIR (or --index FILE.npz built before)")
        if scores_path:
            _writable(scores_path, "--scores")
        if index_path and images:
            _writable(index_path, "--index")
        retriever = Retriever.from_file(resolve_model(model_path), RetrieverOptions(num_threads=threads, quiet=not verbose, reference_kernels=reference_kernels))
        t0 = time.perf_counter()
        if images:
            retriever.index(_photo_list(images), progress=True)
            if index_path:
                retriever.photo_index.save(index_path)
        else:
            retriever.load_index(index_path)
        if verbose:
            click.echo(f"{len(retriever.photo_index.paths)} photos indexed in {time.perf_counter() - t0:.1f} s ({retriever.backend})", err=True)
        if not queries:
            click.echo(f"wrote {index_path}: {len(retriever.photo_index.paths)} photos")
            return
        t0 = time.perf_counter()
        matrix = retriever.scores(list(queries), strict=not scores_path)  # (N, M); a score matrix keeps every text, even one of unknown words
        if verbose:
            click.echo(f"{len(queries)} queries scored in {(time.perf_counter() - t0) * 1e3:.1f} ms", err=True)
    except (ModelFileError, NoInterpreterError, ImageLoadError, PhotoIndexError, QueryError, ValueError, OSError) as e:
        _fail(str(e))
    if scores_path:
        import io

        from edgecap.utils import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, matrix.astype(np.float32))
        atomic_write_bytes(scores_path, buf.getvalue())
        click.echo(f"wrote {scores_path}: scores of {matrix.shape[0]} photos (sorted by path) x {matrix.shape[1]} texts", err=True)
        if texts:
            return
    paths = retriever.photo_index.paths
    for j, query in enumerate(queries):
        order = np.argsort(-matrix[:, j], kind="stable")[:top]
        if as_json:
            click.echo(json.dumps({"query": query, "results": [{"path": paths[i], "score": round(float(matrix[i, j]), 4)} for i in order]}))
        else:
            click.echo(query)
            for i in order:
                click.echo(f"  {matrix[i, j]:8.2f}  {paths[i]}")


@main.command()
@click.argument("photo", type=click.Path())
@click.argument("sentence")
@click.option("--model", "model_path", default=RETRIEVAL_PRESET, show_default=True, help="A built-in alignment model's name or a .tflite file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the figure here (PNG; needs matplotlib).")
def align(photo, sentence, model_path, output):
    """Which part of PHOTO each word of SENTENCE fits best (word–region alignment, Karpathy & Fei-Fei 2015, Fig. 5)."""
    from edgecap.runtime import ImageLoadError, ModelFileError, NoInterpreterError, QueryError, Retriever
    from edgecap.runtime.presets import resolve_model

    try:
        alignment = Retriever.from_file(resolve_model(model_path)).align(photo, sentence)
        for t, word in enumerate(alignment.words):
            cell = alignment.cell(t)
            click.echo(f"{word:>14}  " + ("whole image" if cell is None else f"cell row {cell[0]}, column {cell[1]}") + f"  ({alignment.dots[t].max():.2f})")
        click.echo(f"score {alignment.score:.2f}")
        if output:
            from edgecap.visualize import save_alignment_figure

            click.echo(f"wrote {save_alignment_figure(photo, alignment, output)}")
    except (ModelFileError, NoInterpreterError, ImageLoadError, QueryError, ValueError, ImportError, OSError) as e:
        _fail(str(e))


# ------------------------------------------------------------------------------------- bench
@main.command()
@click.option("--model", "models", multiple=True, help="A built-in model's name or a .tflite file; repeat to time several in the same run (default: the built-in model).")
@click.option("--threads", default="1", show_default=True, help="Comma-separated thread counts, e.g. 1,2.")
@click.option("--images", "image_dir", type=click.Path(exists=True, file_okay=False), help="Photos to time (default: 20 Flickr8k dev photos if present, else examples/).")
@click.option("--repeats", type=click.IntRange(3), default=20, show_default=True)
@click.option("--keras-run", default=None, help="Run directory for the Keras float baseline (default: the released checkpoint); 'none' to skip.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures as JSON (one object per model and thread count under 'results').")
def bench(models, threads, image_dir, repeats, keras_run, json_path):
    """Time load, encode, decode steps and whole captions of one or more models in one run;
    MACs and the floor (integer MACs at the int8 rate, float MACs at the float32 rate, both measured in the same run); compare with Keras float generation."""
    from edgecap.bench import format_report, run_bench
    from edgecap.runtime.presets import resolve_model

    try:
        paths = [resolve_model(m) for m in models] if models else [resolve_model(None)]
        if keras_run not in (None, "none") and not Path(keras_run).is_dir():
            raise ValueError(f"--keras-run {keras_run}: no such run directory (or 'none')")
        thread_counts = [int(t) for t in threads.split(",") if t.strip()]
        report = run_bench(paths, thread_counts, image_dir, repeats, keras_run)
    except (ValueError, OSError, RuntimeError) as e:
        _fail(str(e))
    click.echo(format_report(report))
    if json_path:
        from edgecap.utils import atomic_write_text

        atomic_write_text(json_path, json.dumps(report, indent=1))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def models(as_json):
    """List the built-in models: name, task, size, Flickr8k test scores."""
    from edgecap.runtime.presets import list_presets

    presets = list_presets()
    if not presets:
        _fail("no built-in models are installed")
    for p in presets:
        if as_json:
            click.echo(json.dumps({"name": p.name, "task": p.task, "architecture": p.architecture, "size_mb": round(p.size_mb, 2), "path": str(p.path), "flickr8k_test": p.scores}))
        else:
            scores = ", ".join(f"{k} {v:.2f}" for k, v in p.scores.items() if k in ("BLEU-4", "METEOR", "CIDEr-D"))
            if p.task == "retrieval":
                scores = ", ".join(f"{k} {v:.1f}" for k, v in p.scores.items() if k.endswith(("R@1", "R@10")))
            scores = scores or "not scored"
            click.echo(f"{p.name:40} {p.task:12} {p.size_mb:6.2f} MB  Flickr8k test: {scores}")


# ----------------------------------------------------------------------------------- release
@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out-dir", type=click.Path(file_okay=False), default="export", show_default=True)
@click.option("--data-root", help="Dataset folder.")
@click.option("--threads", default="1,2", show_default=True, help="Thread counts for the benchmark.")
def release(run_dir, out_dir, data_root, threads):
    """Make RUN_DIR the built-in model: export every mode, score them on test, bench, write the model card."""
    _tensorflow_command()
    from edgecap.release import release as run_release

    command = "edgecap release " + " ".join(sys.argv[2:])
    try:
        card = run_release(run_dir, out_dir, data_root, threads=[int(t) for t in threads.split(",")], version=__version__, command=command)
    except (ValueError, OSError, RuntimeError) as e:
        _fail(str(e))
    click.echo(f"wrote {out_dir}/{card['name']}_int8.tflite and its card {out_dir}/{card['name']}.md ({card['seconds']} s)")


if __name__ == "__main__":
    main()
