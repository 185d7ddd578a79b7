"""Runs waiting to start, one after another (or N at once), kept in ``<state dir>/queue.json``.

"Leave the machine overnight and train several models": each entry holds a
snapshot of its config taken when it was queued, so editing the form or the
file afterwards changes nothing that is queued. The file is rewritten
atomically on every change, so the queue survives a Toolbox restart (or a
crash); a restarted Toolbox finds the entries it had started still running
by their pid and process start time.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nectargan.errors import UserError
from nectargan.runs.status import now_iso, read_status
from nectargan.toolbox.launcher import Launch, experiment_named_in, new_id, process_alive
from nectargan.utils.atomic import atomic_write_text

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

QUEUE_FILE = "queue.json"
FORMAT = "nectargan.toolbox_queue"
QUEUED, RUNNING, ENDED, CANCELLED = "queued", "running", "ended", "cancelled"


class QueueError(UserError):
    """An entry that does not exist or cannot be changed in its state."""


@dataclass
class QueueEntry:
    id: str
    name: str  # the experiment name the config asks for
    queued: str
    config: dict[str, Any]  # the snapshot taken when queued
    state: str = QUEUED
    started: str | None = None
    ended: str | None = None
    pid: int | None = None
    proc_start: str | None = None
    log: str | None = None
    experiment_dir: str | None = None
    result: str = ""  # how it ended: the run's status label, or why it never started
    history: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The entry without its (long) config, for lists."""
        return {k: v for k, v in asdict(self).items() if k != "config"}


class RunQueue:
    """The queue's entries in order; every change is written through to the file."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.path = toolbox.state_dir / QUEUE_FILE
        self._lock = threading.RLock()
        self.entries: list[QueueEntry] = self._load()

    # -- changes from the user ----------------------------------------------------------

    def add(self, config: Mapping[str, Any]) -> QueueEntry:
        """Queue an already prepared config (``launcher.prepare_config``): a deep copy."""
        snapshot = json.loads(json.dumps(config))
        name = str((snapshot.get("common") or {}).get("experiment_name") or "run")
        entry = QueueEntry(new_id(), name, now_iso(), snapshot)
        with self._lock:
            self.entries.append(entry)
            self._save()
        return entry

    def cancel(self, entry_id: str) -> QueueEntry:
        with self._lock:
            entry = self.find(entry_id)
            if entry.state != QUEUED:
                raise QueueError(
                    f"queue entry {entry_id}: it is {entry.state}, only a queued entry can be "
                    "cancelled (stop a running one on its run's page)"
                )
            entry.state, entry.ended = CANCELLED, now_iso()
            self._save()
            return entry

    def move(self, entry_id: str, position: int) -> None:
        """Put a queued entry at ``position`` among the queued ones (0 = next to start)."""
        with self._lock:
            entry = self.find(entry_id)
            if entry.state != QUEUED:
                raise QueueError(f"queue entry {entry_id}: it is {entry.state}, not queued")
            waiting = [e for e in self.entries if e.state == QUEUED and e is not entry]
            position = max(0, min(position, len(waiting)))
            waiting.insert(position, entry)
            others = [e for e in self.entries if e.state != QUEUED]
            self.entries = others + waiting
            self._save()

    def remove_finished(self) -> int:
        """Forget ended and cancelled entries; returns how many."""
        with self._lock:
            keep = [e for e in self.entries if e.state in (QUEUED, RUNNING)]
            dropped = len(self.entries) - len(keep)
            self.entries = keep
            self._save()
            return dropped

    def find(self, entry_id: str) -> QueueEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise QueueError(f"queue entry {entry_id!r}: no such entry")

    def list(self) -> list[QueueEntry]:
        with self._lock:
            return list(self.entries)

    # -- the scheduler ------------------------------------------------------------------

    def tick(self) -> None:
        """Note which started entries ended, then start queued ones up to the concurrency."""
        with self._lock:
            changed = any([self._follow(e) for e in self.entries if e.state == RUNNING])
            running = sum(1 for e in self.entries if e.state == RUNNING)
            limit = self.toolbox.settings.get().concurrency
            for entry in [e for e in self.entries if e.state == QUEUED][: max(0, limit - running)]:
                self._start(entry)
                changed = True
            if changed:
                self._save()

    def _start(self, entry: QueueEntry) -> None:
        launcher = self.toolbox.launcher
        try:
            snapshot = launcher.write_snapshot(entry.config, entry.id)
            launch = launcher.start_new(entry.config, launch_id=entry.id, snapshot=snapshot)
        except (OSError, UserError) as exc:
            entry.state, entry.ended, entry.result = ENDED, now_iso(), f"not started: {exc}"
            return
        entry.state, entry.started = RUNNING, launch.started
        entry.pid, entry.proc_start, entry.log = launch.pid, launch.proc_start, launch.log

    def _follow(self, entry: QueueEntry) -> bool:
        """Update a running entry from its launch (this process) or its pid (after a restart);
        returns whether anything changed."""
        launch = self.toolbox.launcher.launches.get(entry.id)
        before = (entry.experiment_dir, entry.log)
        if launch is not None:
            entry.experiment_dir = entry.experiment_dir or launch.experiment_dir
            entry.log = launch.log
        elif entry.experiment_dir is None and entry.log:
            found = experiment_named_in(Path(entry.log))
            entry.experiment_dir = str(found) if found else None
        if self._alive(entry, launch):
            return (entry.experiment_dir, entry.log) != before
        entry.state, entry.ended = ENDED, now_iso()
        entry.result = _outcome(entry, launch)
        return True

    def _alive(self, entry: QueueEntry, launch: Launch | None) -> bool:
        if launch is not None:
            return self.toolbox.launcher.alive(launch)
        return process_alive(entry.pid, entry.proc_start)

    # -- the file -----------------------------------------------------------------------

    def _save(self) -> None:
        data = {"format": FORMAT, "version": 1, "entries": [asdict(e) for e in self.entries]}
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")

    def _load(self) -> list[QueueEntry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        entries = []
        for item in raw.get("entries", []) if isinstance(raw, dict) else []:
            with contextlib.suppress(TypeError):
                entries.append(QueueEntry(**item))
        return entries


def _outcome(entry: QueueEntry, launch: Launch | None) -> str:
    """How a started entry ended: its run's status, or its exit code when it made no run."""
    if entry.experiment_dir:
        status = read_status(Path(entry.experiment_dir))
        if status is not None:
            return status.label
    code = launch.exit_code if launch is not None else None
    return f"exited {code} before making its run folder" if code is not None else "ended"
