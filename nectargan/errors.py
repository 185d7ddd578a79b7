"""The one family of errors that mean "the user asked for something we cannot do".

The CLI prints a :class:`UserError` as one line and exits 2; any other
exception is a bug in NectarGAN (or a library under it) and gets its
traceback and exit 1, so a real defect is never disguised as bad input.
Every module raises the most specific subclass that fits and keeps its own
name as an alias where one existed (``ConfigError``, ``CheckpointError``...).
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unusable environment; the message says what and what to do."""

    exit_code = 2


class ConfigUserError(UserError, ValueError):
    """A config file, ``--set`` override or flag that does not validate."""


class CheckpointUserError(UserError, ValueError):
    """A checkpoint that is missing, unreadable or does not fit the run."""


class ExperimentUserError(UserError, ValueError):
    """An experiment directory that is missing, busy or not one of ours."""


class ServerUserError(UserError, RuntimeError):
    """A Visdom server that cannot be started, reached or stopped as asked."""


class DataUserError(UserError, ValueError):
    """A dataset, image or input file that cannot be used."""
