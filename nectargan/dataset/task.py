"""Progress and cancel for long dataset work, shared by a worker and whoever watches it.

A :class:`Task` is handed to ``pair_folders``, ``split_dataset``, ``download_dataset``
and ``measure_pairs``: the worker reports through it and checks it between items,
a web page (another thread) reads ``snapshot()`` and calls ``cancel()``. The CLI
passes none, or one that prints. Torch-free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from nectargan.errors import DataUserError


class Cancelled(DataUserError):
    """The work was cancelled on request; what it had staged is gone."""

    exit_code = 130


class Task:
    """``done`` of ``total`` items in the current ``phase``; ``cancel()`` stops the worker.

    The worker raises :class:`Cancelled` at its next ``update``/``check`` after a
    cancel, so everything it staged is cleaned up by its own ``finally`` blocks.
    """

    def __init__(self, on_update: Callable[[Task], None] | None = None) -> None:
        self.phase = ""
        self.done = 0
        self.total: int | None = None
        self.started = time.monotonic()
        self._on_update = on_update
        self._cancel = threading.Event()
        self._interrupts: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def update(self, done: int, total: int | None = None, phase: str | None = None) -> None:
        """Record progress, tell the watcher, and stop here if cancelled."""
        if phase is not None and phase != self.phase:
            self.phase, self.started = phase, time.monotonic()
        self.done = done
        if total is not None:
            self.total = total
        if self._on_update is not None:
            self._on_update(self)
        self.check()

    def cancel(self) -> None:
        """Ask the worker to stop; a wait it registered (a blocked read) is interrupted now."""
        self._cancel.set()
        with self._lock:
            interrupts = list(self._interrupts)
        for interrupt in interrupts:
            interrupt()

    def on_cancel(self, interrupt: Callable[[], None]) -> Callable[[], None]:
        """Call ``interrupt`` (from the cancelling thread) when cancelled; returns the undo.

        For a worker blocked where it cannot check (a socket read that may wait a
        minute): ``interrupt`` unblocks it, and the worker's next check raises.
        """
        with self._lock:
            self._interrupts.append(interrupt)
        if self.cancelled:
            interrupt()

        def forget() -> None:
            with self._lock:
                if interrupt in self._interrupts:
                    self._interrupts.remove(interrupt)

        return forget

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"{self.phase or 'work'} cancelled at {self.done} of {self.total}")

    def snapshot(self) -> dict:
        """A JSON-ready view for a progress bar."""
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "elapsed_s": round(time.monotonic() - self.started, 2),
            "cancelled": self.cancelled,
        }


def tick(task: Task | None, done: int, total: int | None = None, phase: str | None = None) -> None:
    """``task.update`` when there is a task (most callers pass none)."""
    if task is not None:
        task.update(done, total, phase)
