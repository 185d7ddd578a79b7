"""Short CLI commands (``nectargan test``, ``nectargan infer``) run as the Toolbox's children.

A page never evaluates or infers in the server's own process: it runs the very
command a user would type, with an argument list (never a shell), in a session
of its own, its output in ``<state>/jobs/<id>.log``. So the page and the CLI
cannot drift apart, a crash in the model code cannot take the server down, and
stopping the Toolbox leaves no half-killed work in it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOB_ID = re.compile(r"^[0-9a-f]{12}$")
LOG_TAIL_LINES = 12
LAUNCHER_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class ChildJob:
    """One command this Toolbox started; ``meta`` is what its page needs to read the result."""

    id: str
    kind: str
    args: list[str]
    log: Path
    started: float
    meta: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    exit_code: int | None = None

    def poll(self) -> int | None:
        if self.exit_code is None and self.proc is not None:
            self.exit_code = self.proc.poll()
        return self.exit_code

    @property
    def state(self) -> str:
        code = self.poll()
        return "running" if code is None else "done" if code == 0 else "failed"

    def log_lines(self) -> list[str]:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()

    def error_line(self) -> str:
        """The command's own one-line error (``nectargan test: error: ...``), else its last line."""
        lines = [line for line in self.log_lines() if line.strip()]
        errors = [line for line in lines if ": error:" in line or line.startswith("error")]
        return (errors or lines or [f"exited with code {self.exit_code}"])[-1]


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


class ChildJobs:
    """The jobs of one Toolbox process, by id (kept in memory: they last seconds to minutes)."""

    def __init__(self, python: str, state_dir: Path, cwd: Path) -> None:
        self.python = python
        self.folder = state_dir / "jobs"
        self.cwd = cwd
        self._jobs: dict[str, ChildJob] = {}
        self._lock = threading.Lock()

    def start(self, kind: str, args: list[str], job_id: str | None = None, **meta: Any) -> ChildJob:
        job_id = job_id or new_job_id()
        self.folder.mkdir(parents=True, exist_ok=True)
        job = ChildJob(job_id, kind, args, self.folder / f"{job_id}.log", time.time(), meta)
        env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
        env["PYTHONUNBUFFERED"] = "1"
        with open(job.log, "wb") as log:
            job.proc = subprocess.Popen(
                [self.python, "-m", "nectargan", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        with self._lock:
            self._jobs[job_id] = job
        return job

    def get(self, job_id: str) -> ChildJob | None:
        if not JOB_ID.match(job_id):
            return None
        with self._lock:
            return self._jobs.get(job_id)
