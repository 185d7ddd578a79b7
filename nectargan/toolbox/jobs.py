"""Background jobs a page starts and watches: a download, pairing, splitting, measuring.

Each job runs the dataset package's own function on a daemon thread with a
:class:`~nectargan.dataset.task.Task`, which the page reads (progress) and
cancels. A job ends ``done`` (with its result), ``failed`` (a user error's one
line, or a bug's type and message) or ``cancelled``; the last few are kept, in
a record file too, so a page opened later, or after a restart, still sees how
they ended. A job's thread dies with the Toolbox: a restarted one lists a job
that was running as failed, saying so (a download started again resumes its
partial file).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectargan.dataset.task import Cancelled, Task
from nectargan.errors import UserError
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.json_files import read_json_object

KEEP_ENDED = 20
RECORD_FIELDS = ("id", "kind", "label", "state", "result", "error", "started", "ended")
STOPPED_WITH_TOOLBOX = (
    "the Toolbox stopped while it ran; start it again (a download resumes its partial file)"
)


@dataclass
class Job:
    id: str
    kind: str
    label: str
    task: Task = field(default_factory=Task)
    state: str = "running"  # running, done, failed, cancelled
    result: Any = None
    error: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None

    def record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RECORD_FIELDS}

    def snapshot(self) -> dict[str, Any]:
        return {**self.record(), "progress": self.task.snapshot()}


class Jobs:
    """The jobs of one Toolbox process (thread-safe), recorded in ``record`` when given."""

    def __init__(self, record: Path | None = None) -> None:
        self.record = record
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._load()

    def start(self, kind: str, label: str, work: Callable[[Task], Any]) -> Job:
        """Run ``work(task)`` on a thread; its return value becomes the job's result."""
        job = Job(f"{kind}-{uuid.uuid4().hex[:12]}", kind, label)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
            self._save()
        threading.Thread(target=self._run, args=(job, work), name=job.id, daemon=True).start()
        return job

    def list(self) -> list[Job]:
        """Newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def running(self, kind: str) -> Job | None:
        with self._lock:
            return next(
                (j for j in self._jobs.values() if j.kind == kind and j.state == "running"), None
            )

    def _run(self, job: Job, work: Callable[[Task], Any]) -> None:
        try:
            job.result = work(job.task)
            job.state = "done"
        except Cancelled as exc:
            job.state, job.error = "cancelled", str(exc)
        except UserError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a bug: keep the Toolbox up, say what it was
            traceback.print_exc()
            job.state, job.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        finally:
            job.ended = time.time()
            with self._lock:
                self._save()

    def _forget_old(self) -> None:
        ended = [j for j in self._jobs.values() if j.state != "running"]
        for job in sorted(ended, key=lambda j: j.started)[:-KEEP_ENDED]:
            del self._jobs[job.id]

    def _save(self) -> None:
        if self.record is not None:
            jobs = [job.record() for job in self._jobs.values()]
            atomic_write_text(self.record, json.dumps({"jobs": jobs}, default=str) + "\n")

    def _load(self) -> None:
        """The jobs of the last Toolbox: a job it was running died with it."""
        data = read_json_object(self.record) if self.record is not None else None
        for item in (data or {}).get("jobs") or []:
            try:
                job = Job(**{k: item[k] for k in RECORD_FIELDS})
            except (KeyError, TypeError):
                continue
            if job.state == "running":
                job.state, job.error = "failed", STOPPED_WITH_TOOLBOX
            self._jobs[job.id] = job
