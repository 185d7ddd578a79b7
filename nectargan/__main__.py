"""``python -m nectargan`` (and ``torchrun -m nectargan``) run the command line."""

from nectargan.cli.main import run

run()
