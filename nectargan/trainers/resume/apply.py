"""The trainer's side of a resume: find the run, check its checkpoint, continue exactly.

Why a mixin of its own: resuming touches the experiment directory, the
checkpoint's counters, the shuffle state, the loss log and the dashboard, but
it happens at two moments only (while the trainer is built, and once before
the first epoch trained); keeping those steps here leaves the trainer's loop
readable. What to resume (:mod:`.plan`, :mod:`.auto`) and how the records are
cut back (:mod:`.history`) live beside it, in the one resume package.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nectargan import experiment_layout as layout
from nectargan.errors import ConfigUserError
from nectargan.trainers.data import restore_order, resumable_sampler
from nectargan.trainers.experiment import create_experiment_dir
from nectargan.trainers.lock import claim_experiment
from nectargan.trainers.resume import auto as auto_resume
from nectargan.trainers.resume import history, pending
from nectargan.trainers.resume import plan as resuming
from nectargan.trainers.resume.choose import find_checkpoint
from nectargan.trainers.run_record import RunRecord
from nectargan.trainers.signals import protect


class ResumeSteps:
    """Mixed into :class:`~nectargan.trainers.trainer.Trainer`: building into a new or a
    resumed experiment directory, and the once-per-run start that continues a resume."""

    def init_experiment_dir(self) -> Path | None:
        """A new ``<output>/<name>_v<N>``, or the run being resumed (checked up front)."""
        resume = self.config.train.resume
        if resume.enable:
            return self._resume_dir(resume.experiment_dir, resume.epoch)
        if resume.auto:
            decision = self._auto_resume_decision()
            if decision.experiment_dir is not None:
                return self._resume_dir(str(decision.experiment_dir), -1)
        common = self.config.common
        path = None
        if self.is_main_process:
            path = create_experiment_dir(common.output_directory, common.experiment_name)
            self.lock = claim_experiment(path, self.log)
            if resume.auto:
                self.log(f"auto-resume: no earlier run of this setup to continue; starting {path}")
        # one directory for all ranks: rank 0 claims it, the others learn its name
        return self.procs.broadcast_object(path)

    def _auto_resume_decision(self) -> auto_resume.Decision:
        """Rank 0 looks at the existing experiments and decides; the other ranks follow."""
        decision = None
        if self.is_main_process:
            decision = auto_resume.decide(self.config, self.log)
        decision = self.procs.broadcast_object(decision)
        message = auto_resume.describe(decision, self.total_epochs)
        if decision.complete:
            self.procs.close()
            raise auto_resume.AlreadyComplete(message)
        if decision.experiment_dir is not None:
            self.log(f"auto-resume: {message}")
        return decision

    def _resume_dir(self, experiment_dir: str | None, epoch: int) -> Path:
        if not experiment_dir:
            raise ConfigUserError(
                "train.resume.experiment_dir: expected the experiment directory to resume "
                "(e.g. output/pix2pix_v3), got null"
            )
        path = Path(experiment_dir).expanduser()
        if self.is_main_process and path.is_dir():  # before anything is read or written
            self.lock = claim_experiment(path, self.log)
        self.resume_path = find_checkpoint(path, epoch)
        header = resuming.read_header(self.resume_path)  # broken file: named, with the fix
        resuming.check_architecture(header["config"], self.config, self.resume_path)
        resuming.check_epochs(self.config, int(header["epoch"]), self.resume_path, header)
        keys = ("epoch", "global_step", "resume_global_step", "position", "loss_steps")
        keys += (pending.REPORT_NOTE,)
        self.run.resume_header = {k: header[k] for k in keys if k in header}
        if isinstance(header.get("data_order"), torch.Tensor):
            self.run.resume_header["data_order"] = header["data_order"].clone()
            self.run.epoch_order = self.run.resume_header[
                "data_order"
            ]  # a stop before the 1st epoch
        self.run.resume_position = self._usable_position(header)
        return path

    def _usable_position(self, header: Mapping[str, Any]) -> dict[str, Any] | None:
        """A mid-epoch checkpoint's place in its epoch, if this run can continue from it.

        With a different number of batches per epoch (the dataset changed, or
        the number of processes), "after batch N" no longer names the same
        data: the epoch then restarts from its beginning, as before mid-epoch
        checkpoints existed.
        """
        position = header.get("position")
        if not isinstance(position, Mapping):
            return None
        batches = len(self.train_loader) if self.train_loader is not None else -1
        if position.get("batches_per_epoch") == batches and position.get("epoch") == int(
            header["epoch"]
        ):
            return dict(position)
        self.log(
            f"the checkpoint stopped inside epoch {int(header['epoch']) + 1} of "
            f"{position.get('batches_per_epoch')} batches, this run has {batches} per epoch: "
            "that epoch restarts from its beginning"
        )
        self.run.resume_header["resume_global_step"] = int(position["epoch_start_step"])
        return None

    def export_config(self) -> Path | None:
        """Save the effective config; a resume adds ``config.resumeN.json`` beside the first."""
        if not self.is_main_process or self.experiment_dir is None:
            return None
        if self.run.resume_header is not None and not self.run.started:
            return None  # written by start_run(), once the resume really starts
        path = self.experiment_dir / layout.CONFIG_FILE
        n = 1
        while path.exists():
            path = self.experiment_dir / layout.resume_config_name(n)
            n += 1
        return self.config.export(path)

    def start_run(self) -> None:
        """Once, before the first epoch of this run: a resume writes its files only now.

        ``config.resumeN.json`` records a resume that really started, and the
        loss log and ``timing.json`` are cut back to the checkpoint, so the
        training this resume discards leaves no trace (one monotonic history).
        The shuffle state is restored, so the next epoch (or the rest of the
        one a mid-epoch checkpoint stopped in) draws the order it would have.
        The time-based checkpoint's clock starts here.
        """
        if self.run.started:
            return
        self.run.started = True
        minutes = self.config.save.every_minutes
        if minutes > 0 and self.is_main_process and self.experiment_dir is not None:
            self.run.save_interval = 60.0 * minutes
        self.run.arm_timed_save()
        if self.is_main_process and self.experiment_dir is not None:
            self.record = RunRecord.begin(
                self.experiment_dir, self.epochs_completed, self.total_epochs, self.log
            )
        header = self.run.resume_header
        if header is None:
            return
        restore_order(self.train_loader, header.get("data_order"))
        position = self.run.resume_position
        # an old-style checkpoint, or one whose place no longer fits: the epoch restarts
        if position is None and "resume_global_step" in header:
            self.progress.restore(self.epochs_completed, int(header["resume_global_step"]))
        self._rewind_history(header, position)
        self.show_history()

    def continue_run(self) -> None:
        """:meth:`start_run`, then finish an epoch end a stop cut short: the checkpoint's
        (:mod:`.pending`), or this trainer's own when ``fit()`` is called again."""
        self.start_run()
        monitor = self.monitor
        if monitor is None or monitor.take_pending() is None:
            return
        self.log(
            f"epoch {self.epochs_completed} stopped after its training, before its "
            "validation was written: finishing its end now, on the weights of its end"
        )
        self.write_epoch_end_files()
        monitor.finish_pending()
        if self.record is not None:
            self.record.epoch_done(self.epochs_completed, self.total_epochs)

    def write_epoch_end_files(self) -> None:
        """Subclasses: the epoch's checkpoint and examples, for :meth:`continue_run`."""

    def show_history(self) -> None:
        """A resumed run, once its records are cut back: redraw what the dashboard shows
        from them (subclasses; the per-epoch windows are redrawn by the run monitor)."""

    def _rewind_history(
        self, header: Mapping[str, Any], position: Mapping[str, Any] | None
    ) -> None:
        """Cut the loss log and ``timing.json`` back to the checkpoint: one history.

        A mid-epoch checkpoint keeps the records made before it (by step); an
        epoch restarted from its beginning keeps those of the epochs done.
        """
        # the checkpoint's step counts, unless its epoch restarts (then: the log's)
        counts = header.get("loss_steps") if position or "position" not in header else None
        self.export_config()
        if self.is_main_process and self.experiment_dir is not None:
            done = self.epochs_completed
            keep = counts if position is not None else None
            with protect("rewinding the loss log"):
                dropped = history.rewind_loss_log(self.loss_manager, done, keep_steps=keep)
                history.rewind_timing(self.experiment_dir, done)
            if dropped:
                where = f"after step {self.global_step}" if keep else f"from epoch {done + 1} on"
                self.log(
                    f"loss log: dropped {dropped} record(s) {where}, left by "
                    f"training this resume discards"
                )
        if counts is not None and self.loss_manager is not None:
            self.loss_manager.restore_step_counts(counts)

    def _epoch_batches(self, skip: int) -> Any:
        """The epoch's batches, after the first ``skip`` (a mid-epoch resume)."""
        if not skip:
            return self.train_loader
        self.log(
            f"resuming epoch {self.current_epoch + 1} after batch {skip} of "
            f"{self.batches_per_epoch}, in the same order"
        )
        sampler = resumable_sampler(self.train_loader)
        if sampler is not None:  # skips indices: nothing is loaded for the batches done
            sampler.skip_next(skip * (self.train_loader.batch_size or 1))
            return self.train_loader
        return itertools.islice(self.train_loader, skip, None)  # a loader of the caller's
