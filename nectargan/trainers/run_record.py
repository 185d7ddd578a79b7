"""The trainer's side of the run status record, and the checkpoints a resume supersedes.

Why here and not in the trainer: how a session ends (finished, Ctrl-C, SIGTERM,
a full disk, an error) maps to one state, exit code and reason, and that map
is the same whichever way training was driven (``fit``, or a loop of
``train_paired`` calls). ``report``, ``replay``, the comparison and the
Toolbox read the record through :func:`nectargan.runs.status.read_status`.

A resumed run also leaves files behind that no longer mean anything once it
has saved past them: the ``interrupted.pt`` it continued from (whose presence
used to make a finished run look "stopped") and a ``mid_epoch.pt`` of a
position already covered by an epoch checkpoint. They are removed as soon as
a checkpoint past them is on disk, never before, so there is always one to
resume from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from nectargan.runs import status as run_status
from nectargan.trainers import checkpoint as ckpt
from nectargan.utils.diskfull import StorageStop

LEFTOVERS = (ckpt.INTERRUPTED, ckpt.MID_EPOCH)


def end_state(exc: BaseException) -> tuple[str, int, str]:
    """(state, exit code, one-line reason) for a session that ``exc`` ended."""
    if isinstance(exc, StorageStop):
        return run_status.DISK_FULL, exc.exit_code, _one_line(exc)
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C 130, SIGTERM 143 (trainers/signals.py)
        signal_name = getattr(exc, "signal_name", "SIGINT")
        how = "Ctrl-C" if signal_name == "SIGINT" else signal_name
        return run_status.INTERRUPTED, int(getattr(exc, "exit_code", 130)), f"stopped by {how}"
    return run_status.CRASHED, 1, f"{type(exc).__name__}: {_one_line(exc)}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class RunRecord:
    """One session's status record plus the leftover checkpoints it will supersede."""

    def __init__(self, experiment_dir: Path, log: Callable[[str], None]) -> None:
        self.experiment_dir = experiment_dir
        self.writer = run_status.StatusWriter(experiment_dir)
        self.log = log
        self.ended = False
        self.leftovers: dict[Path, int] = {}  # file -> the global step it was saved at

    @classmethod
    def begin(
        cls,
        experiment_dir: Path,
        epochs_completed: int,
        total_epochs: int,
        log: Callable[[str], None],
    ) -> RunRecord:
        """A session starts (first start or a resume): ``running``, and note the leftovers."""
        record = cls(experiment_dir, log)
        folder = ckpt.checkpoint_dir(experiment_dir)
        for name in LEFTOVERS:
            step = _saved_step(folder / name)
            if step is not None:
                record.leftovers[folder / name] = step
        record.writer.start(epochs_completed, total_epochs)
        return record

    def epoch_done(self, epochs_completed: int, total_epochs: int) -> None:
        self.writer.progress(epochs_completed, total_epochs)
        if epochs_completed >= total_epochs:
            self._end(run_status.FINISHED, "", 0)

    def stopped(self, exc: BaseException, epochs_completed: int) -> None:
        """The session ends early; the state says why (after the way-out checkpoint)."""
        state, code, reason = end_state(exc)
        if self.writer.status is not None:  # a stop between an epoch's end and its record
            self.writer.status.epochs_completed = epochs_completed
        self._end(state, reason, code)

    def _end(self, state: str, reason: str, code: int) -> None:
        if not self.ended:
            self.ended = True
            self.writer.end(state, reason, code)

    # -- superseded checkpoints --------------------------------------------------------

    def timed_checkpoint_saved(self, path: Path, global_step: int) -> None:
        self.leftovers[path] = global_step

    def epoch_checkpoint_saved(self, global_step: int) -> list[Path]:
        """An epoch checkpoint at ``global_step`` is on disk: drop what it supersedes."""
        removed = []
        for path, step in list(self.leftovers.items()):
            if step > global_step:
                continue
            del self.leftovers[path]
            with contextlib.suppress(OSError):  # one that stays only costs disk space
                path.unlink(missing_ok=True)
                removed.append(path)
        if removed:
            names = ", ".join(p.name for p in removed)
            self.log(f"removed {names}: the checkpoint just written is past it")
        return removed


def _saved_step(path: Path) -> int | None:
    """The global step a leftover checkpoint was saved at (None: absent or unreadable)."""
    if not path.is_file():
        return None
    try:
        header = ckpt.load_checkpoint(path, mmap=True)
    except ckpt.CheckpointError:
        return None  # a broken file is left for the user to look at
    step = header.get("global_step")
    return step if isinstance(step, int) and not isinstance(step, bool) else None
