"""The run status record: what a training run says about itself, in ``run_status.json``.

Why a record and not a guess from files: an ``interrupted.pt`` stays behind
after a resume that ran to the end, and a checkpoint says nothing about a run
that is training right now. The run writes this record when it starts, after
each epoch and when it ends; the CLI, ``report``, ``replay`` and the Toolbox
all read it through :func:`read_status`, which also notices a run that died
without a word (``kill -9``, a lost node): its record still says ``running``
but no process holds the experiment's lock any more.

Torch-free, and cheap to read for hundreds of runs (one small JSON file and,
for a record that says ``running``, one look at ``/proc/locks``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.json_files import read_json_object
from nectargan.utils.processes import pid_alive

STATUS_FILE = layout.RUN_STATUS_FILE
FORMAT = "nectargan.run_status"
VERSION = 1
LOCK_FILE = layout.LOCK_FILE  # the experiment lock (trainers/lock.py) a live run holds

RUNNING = "running"
FINISHED = "finished"
INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: interrupted.pt written, resumable
DISK_FULL = "disk_full"  # stopped because no checkpoint could be written (exit 75)
CRASHED = "crashed"  # an error, or the process vanished (kill -9, lost node)
STATES = (RUNNING, FINISHED, INTERRUPTED, DISK_FULL, CRASHED)

EXIT_CODES = {FINISHED: 0, INTERRUPTED: 130, DISK_FULL: 75, CRASHED: 1}


def now_iso() -> str:
    """UTC time, second precision, ISO 8601 (``2026-12-03T10:08:06Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Session:
    """One process's stretch of training: the first start or one resume."""

    started: str
    pid: int
    host: str
    ended: str | None = None
    state: str = RUNNING
    exit_code: int | None = None
    reason: str = ""
    start_epoch: int = 0  # epochs completed when this session began


@dataclass
class RunStatus:
    """The record as read; ``state`` already accounts for a run that died silently."""

    state: str
    epochs_completed: int
    total_epochs: int
    started: str  # the first session's start
    updated: str
    pid: int | None = None  # the newest session's process
    ended: str | None = None
    exit_code: int | None = None
    reason: str = ""
    sessions: list[Session] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state == RUNNING

    @property
    def label(self) -> str:
        """``running``, ``finished``, ``interrupted``, ``stopped: disk full``, ``crashed``."""
        return {DISK_FULL: "stopped: disk full"}.get(self.state, self.state)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}


# -- reading ----------------------------------------------------------------------------


def status_path(experiment_dir: str | Path) -> Path:
    return Path(experiment_dir) / STATUS_FILE


def read_status(experiment_dir: str | Path, held: bool | None = None) -> RunStatus | None:
    """The run's record, or None when it has none (a run made before records existed,
    or a folder that is no run). A record that says ``running`` while no process holds
    the experiment's lock reads as ``crashed``. ``held``: the lock's state when the
    caller has just looked (each look reads ``/proc/locks``, a few ms on a busy box)."""
    raw = _load(status_path(experiment_dir))
    if raw is None:
        return None
    status = _parse(raw)
    if held is None and status.state == RUNNING:
        held = lock_is_held(experiment_dir)
    if status.state == RUNNING and not held:
        status.state = CRASHED
        status.reason = (
            f"process {status.pid} ended without recording why (killed, or its machine was lost)"
        )
    return status


def _load(path: Path) -> dict[str, Any] | None:
    raw = read_json_object(path)  # None: absent, or torn by a crash mid-write of an older version
    return raw if raw is not None and raw.get("format") == FORMAT else None


def _parse(raw: Mapping[str, Any]) -> RunStatus:
    sessions = [
        Session(**{k: v for k, v in s.items() if k in Session.__dataclass_fields__})
        for s in raw.get("sessions") or []
        if isinstance(s, dict) and "started" in s and "pid" in s and "host" in s
    ]
    state = raw.get("state")
    return RunStatus(
        state=state if state in STATES else CRASHED,
        epochs_completed=int(raw.get("epochs_completed") or 0),
        total_epochs=int(raw.get("total_epochs") or 0),
        started=str(raw.get("started") or ""),
        updated=str(raw.get("updated") or ""),
        pid=raw.get("pid"),
        ended=raw.get("ended"),
        exit_code=raw.get("exit_code"),
        reason=str(raw.get("reason") or ""),
        sessions=sessions,
    )


def lock_is_held(experiment_dir: str | Path) -> bool:
    """Whether some process holds the experiment's ``flock`` right now.

    Read from ``/proc/locks`` (by the lock file's device and inode), so looking
    never takes the lock: a probe with ``flock`` could make a run starting at
    that instant fail with "in use". Without ``/proc``, the pid in the lock
    file is checked instead.
    """
    path = Path(experiment_dir) / LOCK_FILE
    try:
        st = path.stat()
    except OSError:
        return False
    try:
        locks = Path("/proc/locks").read_text()
    except OSError:
        return _pid_in_lock_file_alive(path)
    for line in locks.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a blocked waiter has "->")
        if len(parts) >= 6 and parts[1] == "FLOCK" and "->" not in parts:
            dev_inode = parts[5].split(":")
            if len(dev_inode) == 3 and int(dev_inode[2]) == st.st_ino:
                major, minor = int(dev_inode[0], 16), int(dev_inode[1], 16)
                if (major, minor) == (os.major(st.st_dev), os.minor(st.st_dev)):
                    return True
    return False


def _pid_in_lock_file_alive(path: Path) -> bool:
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    return pid_alive(pid)


# -- writing (the run itself) -----------------------------------------------------------


class StatusWriter:
    """Keeps one run's record up to date; every write is atomic and never raises.

    A full disk must not stop a run because its status could not be written,
    and the record must still say how the run ended when it stops *because* the
    disk is full: the file keeps 4 KiB of blank padding, which a write that
    cannot get a new block reuses in place. A write that fails even so is
    skipped (the next one retries); the reader's lock check still tells a live
    run from a dead one.
    """

    def __init__(self, experiment_dir: str | Path) -> None:
        self.path = status_path(experiment_dir)
        self.status: RunStatus | None = None

    def start(self, epochs_completed: int, total_epochs: int) -> None:
        """A session begins (first start or resume): state ``running``, this pid."""
        previous = _load(self.path)
        old = _parse(previous) if previous is not None else None
        stamp = now_iso()
        session = Session(
            started=stamp, pid=os.getpid(), host=socket.gethostname(), start_epoch=epochs_completed
        )
        sessions = list(old.sessions) if old is not None else []
        for earlier in sessions:  # a session that never wrote its end died silently
            if earlier.state == RUNNING:
                earlier.state, earlier.reason = CRASHED, "ended without recording why"
        self.status = RunStatus(
            state=RUNNING,
            epochs_completed=epochs_completed,
            total_epochs=total_epochs,
            started=old.started if old is not None and old.started else stamp,
            updated=stamp,
            pid=session.pid,
            sessions=[*sessions, session],
        )
        self._write()

    def progress(self, epochs_completed: int, total_epochs: int | None = None) -> None:
        """After each epoch: how far the run is (cheap: one small atomic write)."""
        if self.status is None:
            return
        self.status.epochs_completed = epochs_completed
        if total_epochs is not None:
            self.status.total_epochs = total_epochs
        self.status.updated = now_iso()
        self._write()

    def end(self, state: str, reason: str = "", exit_code: int | None = None) -> None:
        """The session ends: ``finished``, ``interrupted``, ``disk_full`` or ``crashed``."""
        if self.status is None:
            return
        if state not in STATES or state == RUNNING:
            raise ValueError(f"end state {state!r}: expected one of {STATES[1:]}")
        stamp = now_iso()
        code = EXIT_CODES[state] if exit_code is None else exit_code
        self.status.state, self.status.ended, self.status.updated = state, stamp, stamp
        self.status.exit_code, self.status.reason = code, reason
        session = self.status.sessions[-1]
        session.state, session.ended, session.exit_code, session.reason = state, stamp, code, reason
        self._write()

    def _write(self) -> None:
        assert self.status is not None
        text = json.dumps(self.status.to_json(), indent=1) + "\n"
        try:
            atomic_write_text(self.path, _with_reserve(text))
        except OSError:  # a full disk: the room the last write reserved takes this one
            # still nothing (read-only disk, a record grown past its room): skipped, the
            # next write retries, and the reader's lock check tells a live run from a dead one
            with contextlib.suppress(OSError):
                _overwrite_in_place(self.path, text)


RESERVE = 4096  # the record's file is padded to whole blocks with at least this much spare


def _with_reserve(text: str) -> str:
    """``text`` padded with blanks (valid JSON whitespace) to a multiple of 4 KiB, keeping at
    least :data:`RESERVE` bytes spare: the room an end state needs on a disk that has filled."""
    size = len(text.encode("utf-8"))
    padded = -(-(size + RESERVE) // 4096) * 4096
    return text + " " * (padded - size - 1) + "\n"


def _overwrite_in_place(path: Path, text: str) -> None:
    """Write ``text`` over the record's existing bytes: no new block is needed, so this works
    on a full disk. Not atomic, hence only the fallback; a torn record reads as no record."""
    data = text.encode("utf-8")
    with open(path, "r+b") as handle:
        room = os.fstat(handle.fileno()).st_size
        if len(data) + 1 > room:
            raise OSError(f"{path}: the record outgrew its reserved room")
        handle.write(data + b" " * (room - len(data) - 1) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
