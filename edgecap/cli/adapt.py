"""``edgecap adapt``: continue a built-in model (or a run) on a folder of your own captioned photos."""

from __future__ import annotations

import click

from edgecap.cli.common import fail, tensorflow_command


@click.command("adapt")
@click.option(
    "--model",
    "model",
    default="show_attend_tell_flickr8k",
    show_default=True,
    help="The built-in model to start from (one released with its checkpoint), or a run directory.",
)
@click.option(
    "--data",
    "folder",
    required=True,
    type=click.Path(file_okay=False),
    help="Your photos with captions.txt (IMAGE<TAB>caption lines), a COCO captions or Karpathy captions.json, and optionally splits.txt (IMAGE<TAB>train|dev|test).",
)
@click.option(
    "--run-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Where the adapted run goes; the same command again resumes it.",
)
@click.option(
    "--dev-fraction",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of the photos held out to choose the epoch (without a splits.txt).",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of the photos held out for scoring only (without a splits.txt).",
)
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the dev/test draw.")
@click.option(
    "--min-count",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="A word of your captions joins the vocabulary when the training captions use it this often.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Feature cache folder (default $EDGECAP_CACHE_DIR or ~/.cache/edgecap).",
)
@click.argument("overrides", nargs=-1)
def command(model, folder, run_dir, dev_fraction, test_fraction, split_seed, min_count, cache_dir, overrides):
    """Adapt a captioner to your photos: its vocabulary extended with your words, the encoder frozen,
    a short schedule with early stopping on held-out photos. OVERRIDES are section.key=value, as
    for `edgecap train` (e.g. train.epochs=5). Then: edgecap export RUN_DIR --int8."""
    tensorflow_command()
    from edgecap.config import ConfigError
    from edgecap.data.readers import DatasetError
    from edgecap.training.adapt import adapt

    try:
        best = adapt(model, folder, run_dir, dev_fraction, test_fraction, split_seed, min_count, overrides, cache_dir)
    except (ConfigError, DatasetError, ValueError, OSError) as e:
        fail(str(e))
    click.echo(f"best checkpoint: {best}")
    click.echo(f"next: edgecap export {run_dir} --int8")
