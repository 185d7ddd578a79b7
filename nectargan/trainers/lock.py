"""One training run per experiment directory, enforced by an exclusive ``flock``.

Why: two ``train --resume DIR`` at once would overwrite each other's
checkpoints and interleave their loss logs. The lock is an advisory
``flock`` on ``DIR/.nectargan.lock``: the kernel releases it when the holder
exits or is killed (even ``kill -9``), so a crashed run never leaves a stale
lock behind. The holder writes its pid into the file so a refused run can
say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from nectargan import experiment_layout as layout
from nectargan.errors import ExperimentUserError
from nectargan.runs.status import lock_is_held
from nectargan.utils.atomic import remove_stale_temp_files

LOCK_FILE = layout.LOCK_FILE
TEMP_FOLDERS = (".", "checkpoints", "loss_log", "examples")  # where our atomic writes go
_HELD: dict[str, ExperimentLock] = {}  # this process's locks, by resolved directory


class ExperimentBusy(ExperimentUserError):
    """Another process is training in this experiment directory right now."""


class ExperimentLock:
    """Holds the lock on one experiment directory until :meth:`release` or exit."""

    def __init__(self, experiment_dir: str | Path) -> None:
        self.path = Path(experiment_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> ExperimentLock:
        """Take the lock now or raise :class:`ExperimentBusy` naming the holder's pid.

        Within one process a newer trainer on the same directory takes the
        lock over from an older one (scripts and notebooks resume that way);
        across processes only one ever holds it.
        """
        key = str(self.path.parent.resolve())
        if key in _HELD:
            _HELD.pop(key).release()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise ExperimentBusy(
                f"experiment {str(self.path.parent)!r} is in use by another training run "
                f"({who}); wait for it to finish or stop it, then try again"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # a full disk: the lock holds all the same, only the pid goes unrecorded
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _HELD[key] = self
        return self

    def release(self) -> None:
        """Let the next run in (the OS does the same if this process dies)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        key = str(self.path.parent.resolve())
        if _HELD.get(key) is self:
            del _HELD[key]
        with contextlib.suppress(OSError):  # e.g. a read-only disk: the unlock is what counts
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def claim_experiment(experiment_dir: str | Path, log: Callable[[str], None]) -> ExperimentLock:
    """Lock the directory for this run, then clear temp files a killed run left behind.

    Only under the lock is it certain that no live writer owns those files.
    """
    lock = ExperimentLock(experiment_dir).acquire()
    folders = [Path(experiment_dir) / sub for sub in TEMP_FOLDERS]
    removed = remove_stale_temp_files(*folders)
    if removed:
        total = sum(size for _, size in removed)
        names = ", ".join(str(p.relative_to(experiment_dir)) for p, _ in removed[:3])
        more = f" and {len(removed) - 3} more" if len(removed) > 3 else ""
        log(
            f"removed {len(removed)} temporary file(s) ({total / 1e6:.1f} MB) left by an "
            f"interrupted write: {names}{more}"
        )
    return lock


def holder_if_locked(experiment_dir: str | Path) -> int | None:
    """Whether another process holds the directory's lock, without writing anything.

    Returns None when it is free (or held by this process, whose next trainer
    takes it over), else the holder's pid, or 0 when the pid is unknown.
    """
    path = Path(experiment_dir) / LOCK_FILE
    if str(path.parent.resolve()) in _HELD:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file: nobody has ever trained here, or it was removed
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or 0
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def busy_without_checkpoint(experiment_dir: str | Path, option: str) -> ExperimentBusy | None:
    """The error for resuming a run that is training right now and has no checkpoint yet
    (its first epoch), naming its pid; None when no process holds the directory.

    Looked up in ``/proc/locks``, never by taking the lock, so asking cannot make a
    run starting at that instant fail.
    """
    if not lock_is_held(experiment_dir):
        return None
    try:
        holder = int((Path(experiment_dir) / LOCK_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        holder = 0
    who = f"pid {holder}" if holder else "another process"
    return ExperimentBusy(
        f"{option}: experiment {str(experiment_dir)!r} is in use by a training run ({who}) that "
        "has not written its first checkpoint yet; wait for it to finish or stop it, then resume"
    )
