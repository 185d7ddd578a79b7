"""The one family of errors that mean "the user asked for something we cannot do".

The CLI prints a :class:`UserError` as one line and exits 2; any other
exception is a bug in NectarGAN (or a library under it) and gets its
traceback and exit 1, so a real defect is never disguised as bad input.
Every module raises the most specific subclass that fits and keeps its own
name as an alias where one existed (``ConfigError``, ``CheckpointError``...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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


class MissingDataError(DataUserError, FileNotFoundError):
    """A dataset folder or file the user named that is not there.

    Also a ``FileNotFoundError``, so code that caught the built-in keeps working.
    """


class DataExistsError(DataUserError, FileExistsError):
    """An output folder that already holds data we would overwrite."""


class UserFileError(UserError, OSError):
    """The OS refused a file or folder the user named (permissions, full disk, not a folder)."""


class ServerUnreachableError(ServerUserError, ConnectionError):
    """No usable Visdom server where asked (still a ``ConnectionError`` for callers)."""


@contextmanager
def user_files(what: str) -> Iterator[None]:
    """Turn an ``OSError`` on a path the user named into a :class:`UserFileError`.

    For code whose every file is the user's (a dataset tool's input and output
    folders): a permission problem or a full disk there is the user's to fix,
    not a bug. Errors without a file name pass through unchanged.
    """
    try:
        yield
    except UserError:
        raise
    except OSError as exc:
        if exc.filename is None:
            raise
        reason = exc.strerror or type(exc).__name__
        raise UserFileError(f"{what}: {reason}: {exc.filename!r}") from exc
