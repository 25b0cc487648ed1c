"""``python -m edgecap.cli``: the ``edgecap`` command."""

from edgecap.cli import main

main()
