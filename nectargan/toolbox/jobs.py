"""Background jobs a page starts and watches: a download, pairing, splitting, measuring.

Each job runs the dataset package's own function on a daemon thread with a
:class:`~nectargan.dataset.task.Task`, which the page reads (progress) and
cancels. A job ends ``done`` (with its result), ``failed`` (a user error's one
line, or a bug's type and message) or ``cancelled``; the last few are kept so a
page opened later still sees how they ended.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nectargan.dataset.task import Cancelled, Task
from nectargan.errors import UserError

KEEP_ENDED = 20


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

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "state": self.state,
            "progress": self.task.snapshot(),
            "result": self.result,
            "error": self.error,
            "started": self.started,
            "ended": self.ended,
        }


class Jobs:
    """The jobs of one Toolbox process (thread-safe)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, kind: str, label: str, work: Callable[[Task], Any]) -> Job:
        """Run ``work(task)`` on a thread; its return value becomes the job's result."""
        job = Job(f"{kind}-{next(self._ids)}", kind, label)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job, work), name=job.id, daemon=True).start()
        return job

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

    def _forget_old(self) -> None:
        ended = [j for j in self._jobs.values() if j.state != "running"]
        for job in sorted(ended, key=lambda j: j.started)[:-KEEP_ENDED]:
            del self._jobs[job.id]
