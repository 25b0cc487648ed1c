"""``edgecap caption``: caption photos with a TFLite model, without TensorFlow."""

from __future__ import annotations

import errno
import importlib.util
import json
import sys
from pathlib import Path

import click

from edgecap.cli.common import OutputError, WholeLines, fail, kernel_options, photo_paths, writable_folder
from edgecap.runtime.preprocessing import DEFAULT_MAX_PIXELS


def json_line(image, result=None, error=None) -> str:
    """One JSON Lines record (:func:`edgecap.runtime.captioner.caption_record`)."""
    from edgecap.runtime.captioner import caption_record

    return json.dumps(caption_record(image, result, error))


def _tag_text(tag) -> str:
    box = f" [{', '.join(f'{v:.2f}' for v in tag.box)}]" if tag.box is not None else ""
    return f"{tag.word} {tag.score:.2f} ({tag.source}){box}"


@click.command("caption")
@click.argument("images", nargs=-1, type=click.Path())
@click.option(
    "--model",
    "model_path",
    help="A built-in model's name (`edgecap models`) or a .tflite file from `edgecap export` (default: show_attend_tell_flickr8k).",
)
@click.option(
    "--beam-size", type=click.IntRange(1), default=None, help="Beams (1 = greedy; default: the model's, chosen on dev)."
)
@click.option(
    "--length-penalty", type=float, default=None, help="α of log P / length^α (default: the model's, chosen on dev)."
)
@click.option(
    "--max-length", type=click.IntRange(1), default=None, help="Most words per caption (default: the model's)."
)
@click.option(
    "--no-repeat-ngram",
    type=click.IntRange(0),
    default=None,
    help="Never repeat an n-gram of this size, 0 = off (default: the model's).",
)
@click.option(
    "--nbest", type=click.IntRange(1), default=1, show_default=True, help="Captions per image (<= beam size)."
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Interpreter threads inside each Invoke (default with several workers: 1 each).",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Processes captioning photos side by side, each with its own interpreter (default: the cores this process may use, at most one per 8 photos, so a few photos are captioned in this process). The output keeps the photos' order.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON Lines: one object per photo, with the same keys for every photo: image, caption, log_prob, nbest, attributes (word and probability; empty unless the model detects attributes), tags (word, score, source, label, and box [ymin, xmin, ymax, xmax] in 0..1 for a detector), constraints (the tag words the caption was made to say), timings_ms, error (caption and log_prob null, error the message, for a photo that could not be read).",
)
@click.option(
    "--attributes",
    "show_attributes",
    is_flag=True,
    help="Also print the visual attributes the model detects in each photo, with their probabilities (semantic attention models).",
)
@click.option(
    "--attention-dir",
    type=click.Path(file_okay=False),
    help="Write a figure of each word's attention map here (needs matplotlib).",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse photos with more pixels than this once decoded (JPEGs far larger than the model input are decoded at reduced size first).",
)
@click.option(
    "--skip-digest",
    is_flag=True,
    help="Do not compare the model's weights with the SHA-256 digest in its metadata at load (saves one SHA-256 pass over the file; a damaged file is then not detected).",
)
@kernel_options
@click.option(
    "--tagger",
    "taggers",
    multiple=True,
    help="A built-in tagger's name (`edgecap models`) or a tagger .tflite file (labels and word mapping beside it) whose words come with each caption; repeat for several; 'none' for no tagger (default: the default pipeline's, see the README).",
)
@click.option(
    "--tags", "show_tags", is_flag=True, help="Also print what the taggers name in each photo, with scores (and boxes)."
)
@click.option(
    "--constrain/--no-constrain",
    default=True,
    show_default=True,
    help="Let the tags constrain the caption (constrained beam search, Anderson et al. 2017; the rules chosen on the dev sets decide which tags and when); --no-constrain only reports them.",
)
@click.option(
    "--untagged-penalty",
    type=click.FloatRange(0.0),
    default=None,
    help="A tag-conditioned model (the default): nats taken from the words of each COCO object the detector did not see (default 2, chosen on the dev sets; 5: fewer invented objects on coco_dev, CHAIRs 34 % against 46 %, at a cost on Flickr8k; 0: off; inf: never said).",
)
@click.option(
    "--every",
    type=click.FloatRange(0.0),
    default=1.0,
    show_default=True,
    help="Videos and cameras: seconds between the frames considered (0 = every frame); a considered frame is captioned when its scene changed (pip install 'edgecap[video]').",
)
@click.option(
    "--camera",
    default=None,
    help="Caption a camera instead of files: a V4L2 index (0 = /dev/video0, USB and CSI cameras on a Raspberry Pi or a Jetson) or a stream URL (rtsp://...). Ctrl-C stops.",
)
@click.option(
    "--max-interval",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="Videos and cameras: seconds after which an unchanged scene is captioned again (default 10).",
)
@click.option(
    "--format",
    "subtitle_format",
    type=click.Choice(["vtt", "srt"]),
    default=None,
    help="Videos: write the caption spans as subtitles, WebVTT (what an HTML <video> track reads) or SubRip.",
)
@click.option("--verbose", "-v", is_flag=True, help="Say which interpreter runs the model, and the timings.")
def command(
    images,
    model_path,
    beam_size,
    length_penalty,
    max_length,
    no_repeat_ngram,
    nbest,
    threads,
    workers,
    as_json,
    show_attributes,
    attention_dir,
    max_pixels,
    skip_digest,
    kernels,
    taggers,
    show_tags,
    constrain,
    untagged_penalty,
    every,
    camera,
    max_interval,
    subtitle_format,
    verbose,
):
    """Caption IMAGES (files or folders) with a TFLite model, without TensorFlow; or videos
    (anything FFmpeg reads) and cameras (--camera), a caption per scene.

    Every photo that can be read is captioned; each one that cannot (and each folder without
    images) is named on stderr with its cause, and the exit status is then 2; Ctrl-C stops with status 130, the lines written so far whole."""
    from edgecap.runtime import Captioner, CaptionerOptions, ModelFileError, NoInterpreterError
    from edgecap.runtime.guidance import DEFAULT_TAGGERS, ConstraintOptions
    from edgecap.runtime.presets import resolve_model
    from edgecap.runtime.running_modes import SceneOptions
    from edgecap.runtime.video import is_video

    videos = [i for i in images if is_video(i)]
    if not images and camera is None:
        fail("give photos or folders, videos, or --camera")
    if camera is not None and images:
        fail("--camera captions the camera alone; give no files with it")
    if videos and len(videos) != len(images):
        fail("give photos or videos, not both, in one run")
    watching = bool(videos) or camera is not None
    if subtitle_format and (not watching or as_json or len(videos) > 1):
        fail("--format writes one video's (or the camera's) subtitles: give one video and no --json")
    if watching and attention_dir:
        fail("--attention-dir draws photos' attention; not for videos")

    if "none" in taggers and len(taggers) > 1:
        fail("--tagger none cannot be combined with other taggers")
    taggers = () if taggers == ("none",) else (taggers or DEFAULT_TAGGERS)
    if show_tags and not taggers:
        fail("--tags needs a tagger (--tagger NAME; `edgecap models` lists the built-in ones)")
    try:
        path = resolve_model(model_path)
        options = CaptionerOptions(
            beam_size=beam_size,
            length_penalty=length_penalty,
            no_repeat_ngram_size=no_repeat_ngram,
            max_length=max_length,
            num_results=nbest,
            num_threads=threads,
            return_attention=bool(attention_dir),
            quiet=not verbose,
            check_digest=not skip_digest,
            max_pixels=max_pixels,
            kernels=kernels,
            taggers=taggers,
            constrain=constrain,
            constraints=ConstraintOptions()
            if untagged_penalty is None
            else ConstraintOptions(untagged_penalty=untagged_penalty),
            scene=SceneOptions()
            if max_interval is None
            else SceneOptions(min_interval=min(1.0, max_interval), max_interval=max_interval),
        )
        captioner = Captioner.from_file(path, options)
    except (ModelFileError, NoInterpreterError, ValueError) as e:
        fail(str(e))
    if show_attributes and captioner.contract.items is None:
        fail(
            f"--attributes: {path} detects no attributes (a {captioner.metadata.architecture} model); semantic attention models do"
        )
    if attention_dir:  # what can be checked is checked before the first photo
        if captioner.contract.attention is None:
            fail(f"--attention-dir: {path} returns no attention weights (a {captioner.metadata.architecture} model)")
        if importlib.util.find_spec("matplotlib") is None:
            fail("--attention-dir draws figures with matplotlib: pip install 'edgecap[plot]'")
        attention_dir = writable_folder(attention_dir, "--attention-dir")
    if verbose:
        m = captioner.metadata
        click.echo(f"model {path}: {m.name} {m.version} ({m.quantization}), interpreter: {captioner.backend}", err=True)
    try:
        if watching:
            from edgecap.cli.caption_video import caption_videos

            failures = caption_videos(captioner, videos, camera, every, subtitle_format, as_json, show_tags)
        else:
            results = _results(captioner, path, options, images, workers)
            try:
                failures = _caption_each(results, as_json, show_attributes, show_tags, verbose, attention_dir)
            finally:
                results.close()
    except KeyboardInterrupt:  # Ctrl-C: every line written so far is whole (one write a line)
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OutputError as e:  # the lines written so far are whole
        if e.errno == errno.EPIPE:  # the reader stopped (`| head`): quietly, as a shell tool does
            sys.exit(141)
        fail(e.strerror)
    if failures:
        sys.exit(2)


def _results(captioner, path, options, images, workers: int | None):
    """``(image, result, error)`` for every photo of ``images``, in order: captioned here, or
    by worker processes (:mod:`edgecap.runtime.pool`) when there are photos enough for them."""
    from concurrent.futures.process import BrokenProcessPool

    from edgecap.runtime import ImageLoadError, ModelFileError
    from edgecap.runtime.pool import caption_in_workers, default_workers

    photos = list(photo_paths(images))
    readable = [image for image, error in photos if error is None]
    workers = workers or min(default_workers(), max(1, len(readable) // 8))
    retried: list[str] = []
    pooled = caption_in_workers(path, options, readable, workers, retried.append) if workers > 1 else None
    try:
        for image, error in photos:
            if error is not None:
                yield image, None, error
            elif pooled is not None:
                _, result, error = next(pooled)
                yield image, result, error
            else:
                try:
                    yield image, captioner.caption(image), None
                except ImageLoadError as e:
                    yield image, None, str(e)
    except ModelFileError as e:  # the model, not the photo: nothing else will caption
        fail(str(e))
    except BrokenProcessPool as e:
        fail(f"a worker process died while captioning with {path} ({e}); --workers 1 captions in this process")
    finally:
        if pooled is not None:
            pooled.close()  # stops the workers, also on Ctrl-C or a closed output
        if retried:
            click.echo(
                f"note: a worker process died; {len(retried)} photo(s) it held were captioned again by a fresh one",
                err=True,
            )


def _caption_each(results, as_json, show_attributes, show_tags, verbose, attention_dir) -> int:
    """One output line (or JSON line) for each ``(image, result, error)``; the failures' count."""
    out = WholeLines()
    failures = 0
    for image, result, error in results:
        if error is not None:
            click.echo(f"error: {error}", err=True)
            if as_json:
                out.line(json_line(image, error=error))
            failures += 1
            continue
        if as_json:
            out.line(json_line(image, result))
        else:
            lines = [f"{image}: {result.text}", *(f"    {c.text}  ({c.log_prob:.2f})" for c in result.nbest[1:])]
            if show_attributes:
                lines.append("    attributes: " + ", ".join(f"{w} {p:.2f}" for w, p in result.attributes))
            if show_tags:
                lines.append("    tags: " + (", ".join(_tag_text(t) for t in result.tags) or "none"))
                if result.constraints:
                    lines.append("    constrained to say: " + ", ".join(result.constraints))
            out.line("\n".join(lines))
        if verbose:
            click.echo("    " + ", ".join(f"{k} {v:.1f} ms" for k, v in result.timings_ms.items()), err=True)
        if attention_dir:
            from edgecap.visualize import save_attention_figure

            figure = Path(attention_dir) / f"{Path(image).stem}_attention.png"
            try:
                save_attention_figure(image, result, figure)
            except ValueError as e:
                fail(f"--attention-dir: {e}")
            except OSError as e:  # a full disk: the next figure would fail too
                fail(f"{figure}: cannot write the attention figure ({e.strerror or e})")
    return failures
