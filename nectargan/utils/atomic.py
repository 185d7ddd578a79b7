"""Atomic file writes: readers see the old file or the new one, never half of one.

A crash, Ctrl-C or full disk in the middle of a write must not destroy what a
training run already saved (checkpoints, loss logs, configs), so every file
is written to a temporary sibling, flushed to disk, then renamed over the
target in one step.

Temporary files are named ``.<target name>.<8 random characters>.tmp`` and
get the permissions a plain ``open()`` would give (``0666`` minus the umask),
not ``mkstemp``'s private ``0600``. A crash or ``kill -9`` mid-write can leave
one behind; :func:`remove_stale_temp_files` clears ours (only ours, by name)
when a run takes over the directory.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # mkstemp's 8 random characters
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (reading it means setting it, so briefly and under a lock)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextmanager
def atomic_writer(path: str | Path, mode: str = "wb", *, fsync: bool = True) -> Iterator[IO]:
    """Yield a file open on a temp sibling of ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # as open() would create it, not 0600
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = True) -> Path:
    with atomic_writer(path, "w", fsync=fsync) as handle:
        handle.write(text)
    return Path(path)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of :func:`atomic_writer`'s temporary files."""
    return bool(_TEMP_NAME.match(name))


def remove_stale_temp_files(*folders: str | Path) -> list[tuple[Path, int]]:
    """Delete our temp files in ``folders`` (not recursive); returns ``(path, bytes)`` removed.

    Only safe when no other process writes there (the experiment lock).
    """
    removed = []
    for folder in folders:
        try:
            entries = list(Path(folder).iterdir())
        except OSError:
            continue
        for entry in entries:
            if not is_temp_name(entry.name) or not entry.is_file():
                continue
            try:
                size = entry.stat().st_size
                entry.unlink()
            except OSError:
                continue
            removed.append((entry, size))
    return removed
