"""SIGINT and SIGTERM during training: stop like Ctrl-C, and never cut a checkpoint short.

Why a module of its own: a run on a cluster is stopped by SIGTERM (``timeout``,
``docker stop``, SLURM, Kubernetes), whose default action kills the process
before it has saved anything. :class:`InterruptGuard` turns both signals into
:class:`Interrupted` (a ``KeyboardInterrupt``, so every existing Ctrl-C path
applies) carrying the signal, so the command exits ``128 + signum`` (130 for
SIGINT, 143 for SIGTERM) as shells and schedulers expect.

Writes that must not be torn (the checkpoint, the loss log flush) run inside
:meth:`InterruptGuard.protect`. A signal arriving there is held until the
block ends; the first one then interrupts training as usual. Once training
is already stopping, a second signal is only acknowledged (the write goes
on); a third abandons the write, with a warning, for a user who really
cannot wait.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
ABANDON_AT = 3  # the third signal abandons a protected write


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal; ``exit_code`` is the shell's ``128 + signum``."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message or f"signal {signal.Signals(signum).name}")

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


def exit_code_for(exc: BaseException) -> int:
    """130 for a plain Ctrl-C, ``128 + signum`` for a signal we turned into an interrupt."""
    return int(getattr(exc, "exit_code", 130))


def _say(message: str) -> None:
    print(f"nectargan: {message}", file=sys.stderr, flush=True)


class InterruptGuard:
    """Signal handlers for SIGINT/SIGTERM plus protected sections; one per process."""

    def __init__(self) -> None:
        self.signals_seen = 0
        self.stopping = False  # an Interrupted has been raised: training is winding down
        self._depth = 0  # nesting of protect()
        self._held: int | None = None  # a signal that arrived inside protect()
        self._what: list[str] = []
        self._previous: dict[int, Any] = {}

    # -- installation -------------------------------------------------------------------

    def install(self) -> bool:
        """Take over SIGINT/SIGTERM if they still have Python's defaults (main thread only).

        Handlers someone else installed (an application embedding the
        trainer, a test runner) are left alone. Returns whether any was taken.
        """
        if threading.current_thread() is not threading.main_thread():
            return False
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for signum in SIGNALS:
            if signal.getsignal(signum) is defaults[signum]:
                self._previous[signum] = defaults[signum]
                signal.signal(signum, self._handle)
        return bool(self._previous)

    def restore(self) -> None:
        """Give the handlers back (end of ``fit()``); a no-op if none was taken."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def reset(self) -> None:
        """Forget earlier signals (a new ``fit()`` in the same process)."""
        self.signals_seen = 0
        self.stopping = False
        self._held = None

    # -- the handler --------------------------------------------------------------------

    def _handle(self, signum: int, frame: Any) -> None:
        self.signals_seen += 1
        name = signal.Signals(signum).name
        if self._depth == 0 and not self.stopping:
            self._raise(signum)
        what = self._what[-1] if self._what else "saving the training state"
        if self.signals_seen >= ABANDON_AT:
            _say(f"warning: {name} a third time: abandoning {what}; it will not be complete")
            self._raise(signum, f"signal {name} (abandoned {what})")
        if self._held is None and not self.stopping:
            self._held = signum
            _say(f"{name} received: stopping once {what} is done")
        else:
            _say(f"{name} received: still {what}; a third signal abandons it")

    def _raise(self, signum: int, message: str = "") -> None:
        self.stopping = True
        raise Interrupted(signum, message)

    # -- protected sections --------------------------------------------------------------

    @contextmanager
    def protect(self, what: str) -> Iterator[None]:
        """Run the block to its end even if a signal arrives; then act on that signal."""
        self._depth += 1
        self._what.append(what)
        try:
            yield
        finally:
            self._depth -= 1
            self._what.pop()
        if self._depth == 0 and self._held is not None:
            held, self._held = self._held, None
            if not self.stopping:
                self._raise(held)


GUARD = InterruptGuard()


@contextmanager
def handling_signals() -> Iterator[InterruptGuard]:
    """SIGINT/SIGTERM raise :class:`Interrupted` inside the block (if ours to take)."""
    installed = GUARD.install()
    if installed:
        GUARD.reset()
    try:
        yield GUARD
    finally:
        if installed:
            GUARD.restore()


def protect(what: str) -> Any:
    """Shorthand for ``GUARD.protect(what)``; harmless when no handler is installed."""
    return GUARD.protect(what)
