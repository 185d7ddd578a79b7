"""CLI commands a page runs as the Toolbox's children (``test``, ``infer``, ``export``),
with a record on disk so that a restarted Toolbox loses none of them.

A page never evaluates, infers or exports in the server's own process: it runs
the very command a user would type (:func:`~nectargan.toolbox.children.spawn`),
so the page and the CLI cannot drift apart and a crash in the model code cannot
take the server down. Each job has a folder ``<state>/jobs/<id>/`` holding
``job.json`` (its record, rewritten atomically on each change), ``output.log``
and, for inference, ``outputs/``.

A restarted Toolbox reads the records back: a job whose process still runs
(same pid, same kernel start time) is followed and can be stopped; one that
ended meanwhile is judged by what it printed, since its exit code went to a
parent that is gone: its result line means done, no result means failed, with
its own last lines. Finished jobs beyond :data:`KEEP_FINISHED` per page are
deleted, oldest first, with their files; a running job's files never are.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nectargan.errors import UserError
from nectargan.toolbox.children import process_alive, process_start_time, signal_session, spawn
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.json_files import read_json_object

JOBS_DIR = "jobs"
RECORD = "job.json"
LOG_NAME = "output.log"
OUTPUTS = "outputs"
JOB_ID = re.compile(r"^[0-9a-f]{12}$")
KEEP_FINISHED = 30  # finished jobs kept per page, newest first
UPLOAD_TTL_S = 24 * 3600  # an upload no job reads is kept this long (a page may still use it)
RUNNING, DONE, FAILED, STOPPED = "running", "done", "failed", "stopped"
# What each command prints once its work is written: a job that ended while no Toolbox
# was there to see its exit code is done when its log holds this line.
RESULT_LINES = {
    "test": re.compile(r"^outputs: ", re.M),
    "infer": re.compile(r"^wrote \d+ image\(s\) to ", re.M),
    "export": re.compile(r"^max abs difference vs torch: ", re.M),
}
ERROR_LINE = re.compile(r"^(nectargan \w+: .+|\w*Error: .+)$", re.M)


SUMMARY = ("id", "kind", "label", "command", "state", "pid", "exit_code", "started", "ended")
SUMMARY += ("error",)


class JobBusy(UserError):
    """A change a running job does not allow (deleting its files)."""


@dataclass
class ChildJob:
    """One command a page started: its record, as ``job.json`` holds it."""

    id: str
    page: str  # the page that lists it: testing, utilities
    kind: str  # test, infer, export
    label: str
    args: list[str]
    started: float
    pid: int | None = None
    proc_start: str | None = None  # tells our pid from a reused one after a restart
    state: str = RUNNING
    exit_code: int | None = None
    ended: float | None = None
    stop_requested: bool = False
    error: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path = field(default=Path(), repr=False)

    @property
    def log(self) -> Path:
        return self.folder / LOG_NAME

    @property
    def outputs(self) -> Path:
        return self.folder / OUTPUTS

    @property
    def command(self) -> str:
        return "nectargan " + " ".join(self.args)

    def read_log(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_lines(self) -> list[str]:
        return self.read_log().splitlines()

    def summary(self) -> dict[str, Any]:
        """What every page shows of a job (its own result fields come on top)."""
        return {name: getattr(self, name) for name in SUMMARY}

    def to_record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "folder"}


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def failure_line(log: str) -> str:
    """The command's own one-line error (its last), else its last line."""
    errors = ERROR_LINE.findall(log)
    if errors:
        return errors[-1]
    lines = [line for line in log.splitlines() if line.strip()]
    return lines[-1] if lines else "it printed nothing"


class ChildJobs:
    """One page's jobs (thread-safe); every change is written through to the job's record."""

    def __init__(
        self,
        state_dir: Path,
        python: str,
        cwd: Path,
        page: str,
        uploads: Path | None = None,
        keep: int = KEEP_FINISHED,
    ) -> None:
        self.base = state_dir / JOBS_DIR
        self.python, self.cwd, self.page, self.keep = python, cwd, page, keep
        self.uploads = uploads  # where the page keeps uploaded batches its jobs read, if any
        self._jobs: dict[str, ChildJob] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.RLock()
        self._load()
        self.prune()

    def job_dir(self, job_id: str) -> Path:
        return self.base / job_id

    # -- start, stop, delete ---------------------------------------------------------------

    def start(
        self, kind: str, label: str, args: list[str], job_id: str | None = None, **meta: Any
    ) -> ChildJob:
        """Run ``nectargan ARGS`` as job ``job_id`` (made now unless the page needed it first)."""
        job_id = job_id or new_job_id()
        job = ChildJob(job_id, self.page, kind, label, list(args), time.time(), meta=meta)
        job.folder = self.job_dir(job_id)
        proc = spawn(self.python, args, job.log, self.cwd)
        job.pid, job.proc_start = proc.pid, process_start_time(proc.pid)
        with self._lock:
            self._jobs[job_id] = job
            self._procs[job_id] = proc
            self._save(job)
        threading.Thread(
            target=self._wait, args=(job, proc), name=f"job-{job_id}", daemon=True
        ).start()
        self.prune()
        return job

    def stop(self, job: ChildJob) -> None:
        """SIGTERM the job's whole session (the command and anything it started)."""
        with self._lock:
            self._refresh(job)
            if job.state != RUNNING or job.pid is None:
                return
            job.stop_requested = True
            self._save(job)
        signal_session(job.pid)

    def delete(self, job: ChildJob) -> None:
        """Forget a finished job and delete its folder (and the uploads only it used)."""
        with self._lock:
            self._refresh(job)
            if job.state == RUNNING:
                raise JobBusy(f"job {job.id}: it is running; stop it first")
            self._jobs.pop(job.id, None)
            self._procs.pop(job.id, None)
            remove_tree(job.folder, self.base)
            self._remove_uploads(job)

    def prune(self) -> list[str]:
        """Delete the finished jobs beyond the newest :attr:`keep`, and uploads no job reads
        that are older than :data:`UPLOAD_TTL_S`; returns the jobs' ids."""
        with self._lock:
            for job in list(self._jobs.values()):
                self._refresh(job)
            ended = sorted(
                (j for j in self._jobs.values() if j.state != RUNNING),
                key=lambda j: j.started,
                reverse=True,
            )
            dropped = ended[self.keep :]
            for job in dropped:
                self.delete(job)
            self._prune_uploads()
            return [job.id for job in dropped]

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> ChildJob | None:
        if not JOB_ID.match(job_id or ""):
            return None
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._refresh(job)
            return job

    def list(self) -> list[ChildJob]:
        """This page's jobs, newest first."""
        with self._lock:
            for job in self._jobs.values():
                self._refresh(job)
            return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    # -- how a job ends ----------------------------------------------------------------------

    def _wait(self, job: ChildJob, proc: subprocess.Popen) -> None:
        """Note the exit code the moment the command ends (while this Toolbox runs)."""
        code = proc.wait()
        with self._lock:
            if job.state == RUNNING:
                self._end(job, code)

    def _refresh(self, job: ChildJob) -> None:
        """End a running job whose process is gone (ours: by its exit code; else by its log)."""
        if job.state != RUNNING:
            return
        proc = self._procs.get(job.id)
        if proc is not None:
            code = proc.poll()
            if code is not None:
                self._end(job, code)
        elif not process_alive(job.pid, job.proc_start):
            self._end(job, None)

    def _end(self, job: ChildJob, code: int | None) -> None:
        log = job.read_log()
        marker = RESULT_LINES.get(job.kind)
        has_result = code == 0 if code is not None else bool(marker and marker.search(log))
        job.exit_code, job.ended = code, time.time()
        if job.stop_requested and not has_result:
            job.state = STOPPED
        elif has_result:
            job.state = DONE
        else:
            job.state = FAILED
            job.error = failure_line(log)
            if code is None:
                job.error = f"it ended without a result while no Toolbox watched it: {job.error}"
        self._save(job)

    # -- the records -------------------------------------------------------------------------

    def _save(self, job: ChildJob) -> None:
        if job.folder.is_dir():  # not one deleted meanwhile
            text = json.dumps(job.to_record(), indent=1) + "\n"
            atomic_write_text(job.folder / RECORD, text, fsync=False)

    def _load(self) -> None:
        """This page's jobs from their records (a folder without a readable one is skipped)."""
        for job in read_records(self.base):
            if job.page == self.page:
                self._jobs[job.id] = job

    def _remove_uploads(self, job: ChildJob) -> None:
        """The uploaded batch a job read, once no job that is kept reads it too."""
        batch = job.meta.get("batch")
        if self.uploads is None or not batch or batch in self._batches_in_use():
            return
        remove_tree(self.uploads / str(batch), self.uploads)

    def _prune_uploads(self) -> None:
        """Batches uploaded a day ago or more that no job reads (uploaded, never inferred)."""
        if self.uploads is None:
            return
        try:
            batches = [p for p in self.uploads.iterdir() if JOB_ID.match(p.name)]
        except OSError:
            return
        in_use, cutoff = self._batches_in_use(), time.time() - UPLOAD_TTL_S
        for folder in batches:
            with contextlib.suppress(OSError):
                if folder.name not in in_use and folder.stat().st_mtime < cutoff:
                    remove_tree(folder, self.uploads)

    def _batches_in_use(self) -> set[str]:
        return {str(j.meta["batch"]) for j in self._jobs.values() if j.meta.get("batch")}


def read_records(base: Path) -> list[ChildJob]:
    """Every page's jobs from the records under ``base`` (unreadable ones skipped)."""
    try:
        folders = [p for p in base.iterdir() if is_job_folder(p)]
    except OSError:
        return []
    names = {f.name for f in fields(ChildJob)} - {"folder"}
    out = []
    for folder in folders:
        data = read_json_object(folder / RECORD)
        try:
            job = ChildJob(**{k: v for k, v in (data or {}).items() if k in names})
        except TypeError:  # not a record of ours (a missing field)
            continue
        if job.id == folder.name:
            job.folder = folder
            out.append(job)
    return out


def running_jobs(state_dir: Path) -> list[ChildJob]:
    """The page jobs whose command still runs (oldest first): what a stopping Toolbox leaves
    going. Read from the records, so pages never opened in this Toolbox count too."""
    jobs = read_records(state_dir / JOBS_DIR)
    live = [j for j in jobs if j.state == RUNNING and process_alive(j.pid, j.proc_start)]
    return sorted(live, key=lambda j: j.started)


def is_job_folder(path: Path) -> bool:
    """A real folder (not a link) named like a job id."""
    return bool(JOB_ID.match(path.name)) and path.is_dir() and not path.is_symlink()


def remove_tree(path: Path, parent: Path) -> None:
    """Delete ``path`` only when it is a real folder directly inside ``parent`` (never a link)."""
    if path.is_symlink() or not path.is_dir():
        return
    if path.resolve().parent != parent.resolve():
        return
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.rmdir()
