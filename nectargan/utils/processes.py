"""Processes: is one alive (and the same one), and how a long-lived child is started.

One answer for the run lock's holder, the managed Visdom server and the Toolbox's
children. A child that outlives its starter (the Visdom server, the Toolbox's
training runs and jobs) runs in its own session, so Ctrl-C in the starter's
terminal does not reach it, reads nothing from the terminal, and keeps what it
prints in one log file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (also when it is another user's); a zombie counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # exited, not yet reaped by its parent: its stat state is Z
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot): tells a process from a
    later one given the same pid. None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def start_detached(
    command: Sequence[str],
    log_path: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    header: str | None = None,
) -> subprocess.Popen:
    """Run ``command`` (an argument list, never a shell) in its own session.

    ``header`` (one line) is written to the log first, so a log that several
    starts append to says where each begins.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        if header:
            log.write(f"{header}\n".encode())
            log.flush()
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
