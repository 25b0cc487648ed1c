"""The ``edgecap`` command: one module per subcommand, each thin (parse, call, print).

Heavy imports (TensorFlow) happen inside the commands that need them, so ``edgecap caption``
runs on a device with only the runtime installed; a subcommand's module is imported only when it
runs (:class:`LazyGroup`).
"""

from __future__ import annotations

import importlib
import logging
import warnings

import click

from edgecap import __version__

#: subcommand → its module under edgecap.cli, imported only when that command runs (or for
#: ``edgecap --help``), so ``edgecap caption`` imports what captioning needs and nothing more
COMMANDS = {
    "train": "train",
    "adapt": "adapt",
    "evaluate": "evaluate",
    "select-decoding": "select_decoding",
    "export": "export",
    "caption": "caption",
    "caption-archive": "caption_archive",
    "search": "search",
    "align": "align",
    "bench": "bench",
    "models": "models",
    "release": "release",
    "demo": "demo",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when asked for (click's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"edgecap.cli.{COMMANDS[name]}").command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecap")
def main():
    """Attention image captioners, trained with Keras and run on device with TFLite."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.formatwarning = _plain_warning


def _plain_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one plain line (``warning: MESSAGE``), not Python's format with a line of source."""
    return f"warning: {message}\n"
