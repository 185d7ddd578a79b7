"""Keep the visualizer's thread out of torch while the interpreter shuts down.

Why: when Python exits, a daemon thread still running is ended the next time
it takes the GIL back (``pthread_exit``). A thread inside a torch call takes
the GIL back in a C++ destructor, which that unwinding cannot pass, so the C++
runtime aborts the whole process ("terminate called without an active
exception", exit status 134), after the run itself has finished. Under
``torchrun`` that abort fails the job and leaves the other nodes waiting.
It happens whenever ``stop_thread()`` gave up on a slow server while the
thread still had images to render.

The thread therefore does its torch work (loss values to floats, rendering
the image grid) inside :func:`torch_work`. At exit, before the interpreter
starts to finalise, :func:`_close` waits for the call in progress (CPU work,
milliseconds) and keeps every later one waiting for good: a thread parked
there never takes the GIL again, and its network I/O (plain C) ends safely.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Reentrant: single-thread mode does the same work on the training thread, and an
# atexit hook of the user's (say, closing the visualizer) runs on that thread after ours.
_GATE = threading.RLock()
_CLOSE_WAIT_S = 30.0  # far above any render; a bound so exit can never hang here


@contextmanager
def torch_work() -> Iterator[None]:
    """Hold while calling torch off the training thread; blocks for good once Python exits."""
    with _GATE:
        yield


def _close() -> None:
    _GATE.acquire(timeout=_CLOSE_WAIT_S)  # never released: the process is ending


atexit.register(_close)
