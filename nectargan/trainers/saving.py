"""The trainer's files: checkpoints (per epoch, timed, on the way out), the loss log flush,
retention and the epoch's time.

Why a mixin of its own: every write here must survive a full disk (warn, retry,
stop only when nothing can be saved) and a signal (``protect``: never torn), and
runs on the main process only; none of it belongs in the loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers import retention
from nectargan.trainers.data import order_state
from nectargan.trainers.resume.pending import REPORT_NOTE
from nectargan.trainers.signals import protect
from nectargan.trainers.timing import record_epoch
from nectargan.utils.diskfull import StorageStop


def stop_reason(exc: BaseException) -> str:
    """How training ended, for the one line that says so."""
    if getattr(exc, "signal_name", None) == "SIGTERM":
        return "stopped (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, StorageStop):
        return "stopped (no checkpoint could be written)"
    return "failed"


class Saving:
    """Mixed into :class:`~nectargan.trainers.trainer.Trainer`: what it writes to disk."""

    def flush_loss_log(self) -> Path | None:
        """Write the pending loss records; a full disk keeps them for the next flush."""
        if self.loss_manager is None or not self.is_main_process:
            return None
        where = self.experiment_dir / "loss_log.json" if self.experiment_dir else "loss log"
        with protect("flushing the loss log"):
            return self.write_health.attempt("loss log", where, self.loss_manager.flush_log)

    def save_checkpoint(self, interrupted: bool = False) -> Path | None:
        """Write ``checkpoints/epoch_NNNN.pt`` (or ``interrupted.pt``) from ``checkpoint_state``."""
        if not self.is_main_process or self.experiment_dir is None:
            return None
        if interrupted:
            path = ckpt.checkpoint_dir(self.experiment_dir) / ckpt.INTERRUPTED
        else:
            path = ckpt.epoch_path(self.experiment_dir, self.epochs_completed)
        written = self._write_checkpoint(path, interrupted)
        if written is not None and not interrupted:
            if self.record is not None:
                self.record.epoch_checkpoint_saved(self.global_step)
            self.prune_checkpoints()
        return written

    def prune_checkpoints(self) -> list[Path]:
        """``save.keep_last``/``keep_every``: delete the epoch checkpoints past the newest few.

        Only after the new one is on disk, and only under the experiment lock,
        so no other run of this directory is reading or writing them. One line
        when something was deleted; a failed deletion is a warning, never a stop.
        """
        save = self.config.save
        if save.keep_last == 0 or self.lock is None or not self.lock.held:
            return []
        with protect("removing old checkpoints"):
            deleted, problems = retention.prune(
                self.experiment_dir, self.epochs_completed, save.keep_last, save.keep_every
            )
        for problem in problems:
            self.log(f"warning: {problem}; training goes on")
        if deleted:
            names = ", ".join(p.name for p in deleted)
            self.log(f"removed old checkpoints (save.keep_last {save.keep_last}): {names}")
        return deleted

    def save_timed_checkpoint(self) -> Path | None:
        """The rolling ``checkpoints/mid_epoch.pt``, due every ``save.every_minutes``.

        A ``kill -9`` or a lost node then costs at most that much training.
        The loss log is flushed first, so it holds every record the
        checkpoint counts; one file is overwritten (atomically) each time.
        """
        self.run.arm_timed_save()
        if not self.is_main_process or self.experiment_dir is None:
            return None
        self.flush_loss_log()
        written = self._write_checkpoint(
            ckpt.checkpoint_dir(self.experiment_dir) / ckpt.MID_EPOCH, interrupted=False
        )
        if written is not None and self.record is not None:
            self.record.timed_checkpoint_saved(written, self.global_step)
        return written

    def _write_checkpoint(self, path: Path, interrupted: bool) -> Path | None:
        state = self.checkpoint_state()
        state["interrupted"] = interrupted
        state.update(self._position_state())
        with protect(f"writing {path}"):
            if interrupted:  # on the way out: warn if it fails, never stop for it
                return self.write_health.attempt(
                    "checkpoint", path, lambda: ckpt.save_checkpoint(path, state)
                )
            written = self.write_health.checkpoint(path, lambda: ckpt.save_checkpoint(path, state))
        if written is not None:
            self.run.arm_timed_save()
        return written

    def _position_state(self) -> dict[str, Any]:
        """Where in the training this checkpoint is: what a resume needs to go on exactly.

        Inside an epoch, ``position`` names the batches done and the shuffle
        state the epoch was drawn from, so a resume trains the rest of that
        epoch in the same order. ``exact`` is False when the stop came inside
        a step (an error, or a third signal): that batch is then trained again.
        """
        p = self.progress
        state: dict[str, Any] = {"resume_global_step": self.global_step}
        if self.loss_manager is not None:
            state["loss_steps"] = self.loss_manager.step_counts()
        if not p.mid_epoch:
            state["data_order"] = order_state(self.train_loader)  # the next epoch's
            if self.monitor is not None:  # a resume writes the epoch's report if it is missing
                state[REPORT_NOTE] = self.monitor.report_note()
            return state
        state["data_order"] = self.run.epoch_order
        state["position"] = {
            "epoch": p.current_epoch,
            "batches_done": p.batches_done,
            "batches_per_epoch": len(self.train_loader) if self.train_loader is not None else 0,
            "epoch_start_step": self.global_step - p.batches_done,
            "exact": not p.in_step,
        }
        return state

    def save_examples(self) -> list[Path]:
        """Subclasses write example outputs for the epoch just completed."""
        return []

    def record_epoch_time(self, epoch: int) -> None:
        """Main process: keep the epoch's duration in ``timing.json`` for later reviews."""
        if not self.is_main_process or self.experiment_dir is None:
            return
        self.write_health.attempt(  # a full disk must not end a run that could go on
            "timing",
            self.experiment_dir / "timing.json",
            lambda: record_epoch(
                self.experiment_dir,
                epoch + 1,
                self.last_epoch_time,
                self.batches_per_epoch - self.run.epoch_skipped,  # the steps this time took
            ),
        )

    def on_interrupt(self, exc: BaseException) -> None:
        """Keep what was learned: flush the loss log, write ``interrupted.pt``.

        Each action is attempted even if another fails (or a second Ctrl-C
        arrives), and none of them replaces the exception being handled.
        """
        self._handled_interrupt = exc
        with protect("saving the training state"):
            self._save_state_on_the_way_out(exc)
            if self.record is not None:
                self.record.stopped(exc, self.epochs_completed)

    def settle_schedules(self) -> None:
        """Subclasses: put their LR schedules at ``epochs_completed`` (a stop may have come
        between an epoch's last batch and its LR steps); called before ``interrupted.pt``."""

    def _save_state_on_the_way_out(self, exc: BaseException) -> None:
        done = f"{self.epochs_completed} epoch(s) completed"
        if self.progress.mid_epoch and self.progress.batches_done:
            done += f", {self.progress.batches_done} batch(es) of epoch {self.current_epoch + 1}"
        self.log(f"training {stop_reason(exc)} ({done}); saving state")
        for what, action in (
            ("set the LR schedules", self.settle_schedules),  # before the checkpoint
            ("flush the loss log", self.flush_loss_log),
            ("write a checkpoint", lambda: self.save_checkpoint(interrupted=True)),
        ):
            try:
                result = action()
            except NotImplementedError:
                continue
            except BaseException as err:
                self.log(f"could not {what}: {type(err).__name__}: {err}")
                continue
            if isinstance(result, Path) and what == "write a checkpoint":
                self.log(f"checkpoint written: {result}")
