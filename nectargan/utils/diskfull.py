"""Writes that may fail (full disk, quota, a vanished mount) without ending the run.

Why: a days-long run should not die because the disk filled up for an hour,
and it should not spam one warning per step or leak a traceback either.
:class:`WriteHealth` runs each periodic save (checkpoint, loss log, example
images, timing) and, per kind of file, warns once when it starts failing
(naming the file and the free space left) and once when it works again.
Failed saves are retried at the next save point by the caller's schedule.

Checkpoints are special: training on with nothing saved wastes the machine,
so after :data:`MAX_FAILED_CHECKPOINTS` consecutive failed checkpoint saves
:class:`StorageStop` ends the run (exit status 75, ``EX_TEMPFAIL``: try
again later).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from nectargan.errors import UserError

T = TypeVar("T")
MAX_FAILED_CHECKPOINTS = 3
EXIT_TEMPFAIL = 75


class StorageStop(UserError, OSError):
    """Nothing could be saved for too long: stop instead of training on for nothing."""

    exit_code = EXIT_TEMPFAIL


def free_space(path: str | Path) -> int | None:
    """Bytes free for us on the filesystem holding ``path`` (its nearest existing parent)."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def format_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def describe_error(exc: BaseException) -> str:
    """``strerror`` for OS errors (no errno noise), the message for the rest."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def is_write_error(exc: BaseException) -> bool:
    """An OS write error, or torch's wrapper around one (``PytorchStreamWriter failed ...``)."""
    if isinstance(exc, OSError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("failed writing" in text or "file write" in text)


class WriteHealth:
    """Per kind of file: is it failing, and how many checkpoint saves failed in a row."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.failing: dict[str, str] = {}  # kind -> the file that failed
        self.failed_checkpoints = 0
        self.last_good_checkpoint: Path | None = None

    def attempt(self, kind: str, path: str | Path, write: Callable[[], T]) -> T | None:
        """``write()``; on a write error, warn (once per outage) and return None."""
        try:
            result = write()
        except Exception as exc:
            if not is_write_error(exc):
                raise
            self._failed(kind, Path(path), exc)
            return None
        self._succeeded(kind, Path(path))
        return result

    def checkpoint(self, path: str | Path, write: Callable[[], T]) -> T | None:
        """Like :meth:`attempt`, but too many failures in a row raise :class:`StorageStop`."""
        result = self.attempt("checkpoint", path, write)
        if result is not None:
            self.failed_checkpoints = 0
            self.last_good_checkpoint = Path(path)
            return result
        self.failed_checkpoints += 1
        if self.failed_checkpoints >= MAX_FAILED_CHECKPOINTS:
            kept = (
                f"the last checkpoint written is {self.last_good_checkpoint}"
                if self.last_good_checkpoint
                else "earlier checkpoints, if any, are intact"
            )
            raise StorageStop(
                f"stopping: {self.failed_checkpoints} checkpoint saves in a row failed "
                f"(last: {path}, {format_bytes(free_space(path))} free); {kept}. "
                "Free some space, then resume the run"
            )
        return None

    def _failed(self, kind: str, path: Path, exc: BaseException) -> None:
        if kind in self.failing:
            return
        self.failing[kind] = str(path)
        self.log(
            f"warning: could not write {kind} {path}: {describe_error(exc)} "
            f"({format_bytes(free_space(path))} free there); training goes on, "
            "retrying at the next save"
        )

    def _succeeded(self, kind: str, path: Path) -> None:
        if self.failing.pop(kind, None) is not None:
            self.log(f"writing {kind} files again ({path})")


def guarded(health: WriteHealth | None, kind: str, path: str | Path, write: Callable[[], Any]):
    """``health.attempt(...)`` or, without a health tracker, just ``write()``."""
    return write() if health is None else health.attempt(kind, path, write)
