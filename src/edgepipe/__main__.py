"""``python -m edgepipe``: the same as the ``edgepipe`` command."""

from edgepipe.cli.main import run

run()
