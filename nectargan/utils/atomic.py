"""Atomic file writes: readers see the old file or the new one, never half of one.

A crash, Ctrl-C or full disk in the middle of a write must not destroy what a
training run already saved (checkpoints, loss logs, configs), so every file
is written to a temporary sibling, flushed to disk, then renamed over the
target in one step.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_writer(path: str | Path, mode: str = "wb", *, fsync: bool = True) -> Iterator[IO]:
    """Yield a file open on a temp sibling of ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
