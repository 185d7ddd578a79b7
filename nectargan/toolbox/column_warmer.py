"""Column files for runs that lack them, made in the background when the Toolbox starts.

A run trained before column files existed (``nectargan/losses/loss_columns.py``),
or copied without them, would make its first Review visit parse its whole loss
log (13 s for 1M steps on 2 cores). So once the Toolbox is up, a child process
at low priority (``nice`` 10) writes the missing ones, most recently active runs
first. A process, not a thread: ``json.loads`` of a segment holds the GIL for a
second, which would stall every page of the Toolbox meanwhile. A run whose column
files are current costs a header read per segment, so a restart redoes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

NICENESS = 10


class ColumnWarmer:
    """The child that writes missing column files; stopped (if still busy) with the Toolbox."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def start(self, folders: Sequence[Path | str]) -> None:
        """Start the child once (from the warm-up timer); never after :meth:`stop`."""
        with self._lock:
            if not folders or self.proc is not None or self._stopped:
                return
            self.proc = subprocess.Popen(
                [sys.executable, "-m", __name__, *map(str, folders)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM: the child ends between two files (a half-written one is removed)."""
        with self._lock:
            self._stopped = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main(folders: Sequence[str]) -> int:
    """Write the missing column files of each experiment folder; how many were written."""
    os.nice(NICENESS)  # first, and itself: preexec_fn is unsafe in the Toolbox's threads
    from nectargan.losses.loss_log import write_missing_columns

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds: temp files removed
    written = 0
    for folder in folders:
        try:
            written += write_missing_columns(folder)
        except OSError:  # the run was deleted meanwhile: the next one
            continue
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
