"""``edgecap train``: train (or resume) any registered model; its task picks the trainer."""

from __future__ import annotations

from pathlib import Path

import click

from edgecap.cli.common import fail, tensorflow_command


@click.command("train")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config (default: the shipped Flickr8k config, or the run's own when resuming).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    default="runs/show_attend_tell",
    show_default=True,
    help="Where checkpoints, logs and the config go; an existing run resumes.",
)
@click.option("--data-root", help="Dataset folder (overrides data.root and $EDGECAP_DATA_ROOT).")
@click.option(
    "--encoder-weights", help="Encoder weights file (overrides model.encoder_weights and $EDGECAP_ENCODER_WEIGHTS)."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Feature cache folder (default $EDGECAP_CACHE_DIR or ~/.cache/edgecap).",
)
@click.argument("overrides", nargs=-1)
def command(config_path, run_dir, data_root, encoder_weights, cache_dir, overrides):
    """Train a model (a captioner, the image–sentence alignment model, an attribute detector). OVERRIDES are section.key=value, e.g. train.epochs=5."""
    tensorflow_command()
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
        from edgecap.runs import read_splits

        read_splits(cfg, ("train", "dev"), data_root)  # the data's problems before TensorFlow starts
        from edgecap.models import registry

        best = registry.task_of(cfg.model.architecture).stage("train")(cfg, run_dir, data_root, cache_dir)
    except (ConfigError, ValueError, OSError) as e:
        fail(str(e))
    click.echo(f"best checkpoint: {best}")
