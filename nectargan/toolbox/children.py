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

# A Toolbox started by a distributed launcher must not hand its rank to the runs it starts.
LAUNCHER_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def spawn(
    python: str, args: Sequence[str], log_path: Path, cwd: Path, header: str | None = None
) -> subprocess.Popen:
    """Start ``python -m nectargan ARGS`` in its own session, output appended to ``log_path``.

    ``header`` (one line) is written to the log first, so a log that several
    starts append to says where each begins.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env["PYTHONUNBUFFERED"] = "1"  # the log is followed live
    with open(log_path, "ab") as log:
        if header:
            log.write(f"{header}\n".encode())
            log.flush()
        return subprocess.Popen(
            [python, "-m", "nectargan", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int | None, start: str | None = None) -> bool:
    """Whether ``pid`` still runs (and is the same process, when its start time is known)."""
    if not pid:
        return False
    now = process_start_time(pid)
    if now is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and (start is None or now == start)


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
