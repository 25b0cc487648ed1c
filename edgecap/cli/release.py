"""``edgecap release``: make a run a built-in model, with its card."""

from __future__ import annotations

import sys

import click

from edgecap import __version__
from edgecap.cli.common import fail, tensorflow_command


@click.command("release")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out-dir", type=click.Path(file_okay=False), default="export", show_default=True)
@click.option("--data-root", help="Dataset folder.")
@click.option("--threads", default="1,2", show_default=True, help="Thread counts for the benchmark.")
@click.option(
    "--modes",
    default=None,
    help="Export modes to verify and score beside Keras, e.g. float32,int8 (int8, the built-in file, is required; "
    "default: a captioner's four modes, the alignment model's float32 and int8).",
)
def command(run_dir, out_dir, data_root, threads, modes):
    """Make RUN_DIR the built-in model: export every mode, score them on test, bench, write the model card."""
    tensorflow_command()
    from edgecap.release import release as run_release

    command = "edgecap release " + " ".join(sys.argv[2:])
    try:
        card = run_release(
            run_dir,
            out_dir,
            data_root,
            modes=tuple(m.strip() for m in modes.split(",") if m.strip()) if modes else None,
            threads=[int(t) for t in threads.split(",")],
            version=__version__,
            command=command,
        )
    except (ValueError, OSError, RuntimeError) as e:
        fail(str(e))
    click.echo(
        f"wrote {out_dir}/{card['name']}_int8.tflite and its card {out_dir}/{card['name']}.md ({card['seconds']} s)"
    )
