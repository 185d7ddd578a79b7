"""Every process the Toolbox starts (training runs and page jobs) is started here, one way.

A child is the CLI command itself (``python -m nectargan ARGS``), started with an
argument list (never a shell), in a session of its own (Ctrl-C in the Toolbox's
terminal misses it, and stopping the Toolbox leaves it going), its output
appended to a log file. A later Toolbox finds it again by pid and the kernel's
start time of that pid, so a pid reused by another process is not taken for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from nectargan.utils.processes import pid_alive, process_start_time, start_detached

# A Toolbox started by a distributed launcher must not hand its rank to the runs it starts.
LAUNCHER_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def spawn(
    python: str, args: Sequence[str], log_path: Path, cwd: Path, header: str | None = None
) -> subprocess.Popen:
    """Start ``python -m nectargan ARGS`` in its own session, output appended to ``log_path``
    (after ``header``, one line, when given)."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env["PYTHONUNBUFFERED"] = "1"  # the log is followed live
    return start_detached([python, "-m", "nectargan", *args], log_path, env, cwd, header)


def process_alive(pid: int | None, start: str | None = None) -> bool:
    """Whether ``pid`` still runs (and is the same process, when its start time is known)."""
    if not pid or not pid_alive(pid):
        return False
    return start is None or process_start_time(pid) == start


def signal_session(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal ``pid``'s process group when it leads its own session, else ``pid`` alone.

    A stopped (SIGSTOP, Ctrl-Z) process only acts on SIGTERM once continued,
    so SIGCONT follows, as a shell's ``kill`` does for its stopped jobs.
    Raises PermissionError for another user's process; a process already gone is fine.
    """
    with contextlib.suppress(ProcessLookupError):
        if os.getsid(pid) == pid:
            os.killpg(pid, sig)
            os.killpg(pid, signal.SIGCONT)
        else:
            os.kill(pid, sig)
            os.kill(pid, signal.SIGCONT)
