"""``python -m seqlab_cli``: the same as the ``seqlab`` console script."""

from seqlab_cli.main import cli

cli(prog_name="seqlab")
