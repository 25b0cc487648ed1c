"""``edgecap bench``: speed, size and MACs of several models in one run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgecap.cli.common import fail


@click.command("bench")
@click.option(
    "--model",
    "models",
    multiple=True,
    help="A built-in model's name or a .tflite file; repeat to time several in the same run (default: the built-in model).",
)
@click.option("--threads", default="1", show_default=True, help="Comma-separated thread counts, e.g. 1,2.")
@click.option(
    "--images",
    "image_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Photos to time (default: 20 Flickr8k dev photos if present, else examples/); given, the whole folder is also captioned by `edgecap caption DIR` with its defaults (photos/s).",
)
@click.option("--repeats", type=click.IntRange(3), default=20, show_default=True)
@click.option(
    "--keras-run",
    default=None,
    help="Run directory for the Keras float baseline (default: the released checkpoint); 'none' to skip.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Also write the figures as JSON (one object per model and thread count under 'results').",
)
@click.option(
    "--baseline",
    metavar="REVISION",
    help="Also time each model with the code and built-in files of this git revision, in the same run (e.g. a release tag).",
)
@click.option(
    "--video",
    type=click.Path(exists=True, dir_okay=False),
    help="Instead: time captioning this video against decoding it (every frame considered), and LIVE_STREAM's latency with the frames fed at the file's pace (the first --model, the first --threads; pip install 'edgecap[video]').",
)
def command(models, threads, image_dir, repeats, keras_run, json_path, baseline, video):
    """Time load, encode, decode steps and whole captions of one or more models in one run;
    MACs and the floor (integer MACs at the int8 rate, float MACs at the float32 rate, both measured in the same run); compare with Keras float generation."""
    from edgecap.bench import format_report, run_bench
    from edgecap.runtime.presets import resolve_model

    if video:
        from edgecap.bench_video import format_video_report, run_video_bench
        from edgecap.runtime import ModelFileError
        from edgecap.runtime.video import VideoError

        try:
            thread_counts = [int(t) for t in threads.split(",") if t.strip()]
            report = run_video_bench(resolve_model(models[0] if models else None), Path(video), thread_counts[0])
        except (ValueError, ModelFileError, VideoError) as e:
            fail(str(e))
        click.echo(format_video_report(report))
        if json_path:
            from edgecap.utils import atomic_write_text

            atomic_write_text(json_path, json.dumps(report, indent=1))
        return

    try:
        paths = [resolve_model(m) for m in models] if models else [resolve_model(None)]
        if keras_run not in (None, "none") and not Path(keras_run).is_dir():
            raise ValueError(f"--keras-run {keras_run}: no such run directory (or 'none')")
        thread_counts = [int(t) for t in threads.split(",") if t.strip()]
        report = run_bench(paths, thread_counts, image_dir, repeats, keras_run, baseline)
    except (ValueError, OSError, RuntimeError) as e:
        fail(str(e))
    click.echo(format_report(report))
    if json_path:
        from edgecap.utils import atomic_write_text

        atomic_write_text(json_path, json.dumps(report, indent=1))
