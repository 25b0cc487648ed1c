"""``edgecap caption-archive``: caption a photo archive on Apache Beam (``pip install 'edgecap[beam]'``)."""

from __future__ import annotations

import importlib.util
import sys

import click

from edgecap.cli.common import fail


@click.command("caption-archive", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("input_glob")
@click.argument("output_prefix")
@click.option(
    "--model",
    "model_path",
    help="A built-in model's name or a .tflite file (default: show_attend_tell_flickr8k; the alignment model writes region vectors).",
)
@click.option(
    "--tagger",
    "taggers",
    multiple=True,
    help="As for `edgecap caption` (default: coco_detector; `none` for no tagger).",
)
@click.pass_context
def command(ctx, input_glob, output_prefix, model_path, taggers):
    """Caption every photo INPUT_GLOB matches (local, gs://, s3://, ...) into JSON Lines shards
    OUTPUT_PREFIX-SSSSS-of-NNNNN.jsonl, one record per photo as `edgecap caption --json` writes it;
    a photo that cannot be read (a dangling link too) is an error record, and the exit status
    is then 2, as for `edgecap caption`; an output prefix that cannot be written is refused
    before the pipeline starts. Any further options are Beam's pipeline
    options, e.g. --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
    (default: the DirectRunner, on this machine)."""
    if importlib.util.find_spec("apache_beam") is None:
        fail("caption-archive runs on Apache Beam: pip install 'edgecap[beam]'")
    from edgecap.beam import caption_archive
    from edgecap.runtime import ModelFileError
    from edgecap.runtime.guidance import DEFAULT_TAGGERS

    taggers = () if taggers == ("none",) else (taggers or DEFAULT_TAGGERS)
    try:
        records, errors = caption_archive(input_glob, output_prefix, model_path, taggers, ctx.args)
    except (ModelFileError, ValueError, OSError) as e:
        fail(str(e))
    click.echo(f"wrote {output_prefix}-*.jsonl: {records} records, {errors} errors")
    if errors:  # as `edgecap caption`: some photo could not be read
        sys.exit(2)
