"""``edgecap select-decoding``: choose the decoding of a captioner run on dev."""

from __future__ import annotations

import click

from edgecap.cli.common import fail, tensorflow_command


@click.command("select-decoding")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--beam-sizes", default="1,3,5", show_default=True)
@click.option("--length-penalties", default="0,0.25,0.5,0.75,1", show_default=True)
@click.option(
    "--no-repeat-ngram-sizes", default="0,3", show_default=True, help="n-gram blocking sizes to try (0 = off)."
)
@click.option("--data-root", help="Dataset folder.")
def command(run_dir, beam_sizes, length_penalties, no_repeat_ngram_sizes, data_root):
    """Choose beam size, length penalty and n-gram blocking on the dev split (CIDEr-D); saved as RUN_DIR/decoding.json."""
    tensorflow_command()
    from edgecap.evaluation.evaluate import select_decoding as run_select

    try:
        out = run_select(
            run_dir,
            [int(x) for x in beam_sizes.split(",")],
            [float(x) for x in length_penalties.split(",")],
            "dev",
            data_root,
            [int(x) for x in no_repeat_ngram_sizes.split(",")],
        )
    except (ValueError, OSError, RuntimeError) as e:
        fail(str(e))
    click.echo(
        f"selected beam size {out['beam_size']}, length penalty {out['length_penalty']}, no-repeat n-gram {out['no_repeat_ngram_size']}"
    )
