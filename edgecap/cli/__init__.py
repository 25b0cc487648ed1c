"""The ``edgecap`` command: one module per subcommand, each thin (parse, call, print).

Heavy imports (TensorFlow) happen inside the commands that need them, so ``edgecap caption``
runs on a device with only the runtime installed.
"""

from __future__ import annotations

import logging

import click

from edgecap import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecap")
def main():
    """Attention image captioners, trained with Keras and run on device with TFLite."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


from edgecap.cli import (  # noqa: E402
    adapt,
    align,
    bench,
    caption,
    caption_archive,
    evaluate,
    export,
    models,
    release,
    search,
    select_decoding,
    train,
)

for _module in (
    train,
    adapt,
    evaluate,
    select_decoding,
    export,
    caption,
    caption_archive,
    search,
    align,
    bench,
    models,
    release,
):
    main.add_command(_module.command)
