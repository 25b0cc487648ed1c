"""``edgecap align``: which part of a photo each word fits best."""

from __future__ import annotations

import click

from edgecap.cli.common import fail
from edgecap.paths import DEFAULT_RETRIEVAL_PRESET


@click.command("align")
@click.argument("photo", type=click.Path())
@click.argument("sentence")
@click.option(
    "--model",
    "model_path",
    default=DEFAULT_RETRIEVAL_PRESET,
    show_default=True,
    help="A built-in alignment model's name or a .tflite file.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the figure here (PNG; needs matplotlib).")
def command(photo, sentence, model_path, output):
    """Which part of PHOTO each word of SENTENCE fits best (word–region alignment, Karpathy & Fei-Fei 2015, Fig. 5)."""
    from edgecap.runtime import ImageLoadError, ModelFileError, NoInterpreterError, QueryError, Retriever
    from edgecap.runtime.presets import resolve_model

    try:
        alignment = Retriever.from_file(resolve_model(model_path)).align(photo, sentence)
        for t, word in enumerate(alignment.words):
            cell = alignment.cell(t)
            click.echo(
                f"{word:>14}  "
                + ("whole image" if cell is None else f"cell row {cell[0]}, column {cell[1]}")
                + f"  ({alignment.dots[t].max():.2f})"
            )
        click.echo(f"score {alignment.score:.2f}")
        if output:
            from edgecap.visualize import save_alignment_figure

            click.echo(f"wrote {save_alignment_figure(photo, alignment, output)}")
    except (ModelFileError, NoInterpreterError, ImageLoadError, QueryError, ValueError, ImportError, OSError) as e:
        fail(str(e))
