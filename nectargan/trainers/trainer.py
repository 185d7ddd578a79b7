"""Base class for paired-image trainers: the epoch loop, and the order a trainer is built in.

A subclass (see :class:`~nectargan.trainers.pix2pix_trainer.Pix2pixTrainer`)
builds its networks, losses and optimisers in the setup hooks that
:meth:`Trainer.setup` calls in order, and implements ``on_epoch_start``,
``train_step``, ``on_epoch_end`` and ``checkpoint_state``; the step hooks can
also be passed to :meth:`Trainer.train_paired` as plain callables.

``__init__`` (of every class in the hierarchy) only stores settings; once the
outermost one has returned, :meth:`Trainer.setup` builds the trainer (data ->
experiment directory -> networks -> losses -> optimisers -> resume ->
dashboard), so ``Pix2pixTrainer("my.json")`` returns a ready trainer.

Around the loop, in modules of their own: resuming (:mod:`.resume`), files and
checkpoints (:mod:`.saving`), the dashboard (:mod:`.dashboard`), the run's
counters and resume position (:mod:`.run_state`). One process and a
``torchrun`` job run the same lines: ``self.procs`` is a
:class:`~nectargan.trainers.distributed.Distributed` or its no-op stand-in.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from nectargan import experiment_layout as layout
from nectargan.config import Config
from nectargan.losses import LossManager
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.builders import memory_format
from nectargan.trainers.dashboard import Dashboard, DashboardSteps, is_local_url, log_line
from nectargan.trainers.data import dataroot_for, order_state, usable_cores
from nectargan.trainers.distributed import (
    Distributed,
    RankDebugLog,
    ReplicaSteps,
    join,
    set_sampler_epoch,
)
from nectargan.trainers.lock import ExperimentLock
from nectargan.trainers.precision import resolve_device, resolve_precision
from nectargan.trainers.progress import Progress
from nectargan.trainers.resume.apply import ResumeSteps
from nectargan.trainers.run_record import RunRecord
from nectargan.trainers.run_state import RunState
from nectargan.trainers.saving import Saving, stop_reason
from nectargan.trainers.signals import handling_signals, protect
from nectargan.trainers.upstream_api import UpstreamTrainerAPI
from nectargan.utils.diskfull import WriteHealth
from nectargan.utils.forwarded import Forwarded

__all__ = ["Trainer", "is_local_url", "stop_reason"]  # kept importable from here

CALLBACKS = ("on_epoch_start", "train_step", "on_epoch_end")
CONFIG_FILE = layout.CONFIG_FILE
StepFn = Callable[..., None]
StepObserver = Callable[["Trainer", int], None]


def _split_callback_kwargs(
    callback_kwargs: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """``{'train_step': {...}, ...}`` -> one kwargs dict per hook, refusing unknown hooks."""
    callback_kwargs = callback_kwargs or {}
    unknown = sorted(set(callback_kwargs) - set(CALLBACKS))
    if unknown:
        raise ValueError(
            f"callback_kwargs: unknown hook(s) {unknown}; expected some of {CALLBACKS}"
        )
    return {name: dict(callback_kwargs.get(name) or {}) for name in CALLBACKS}


def _setup_after(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an ``__init__`` so that :meth:`Trainer.setup` runs once the outermost one returns.

    A base ``__init__`` that called subclass hooks would run them before the
    subclass had stored its own settings; building at the end of construction
    lets every ``__init__`` stay a plain list of settings.
    """

    @functools.wraps(init)
    def build_when_outermost(self: Trainer, *args: Any, **kwargs: Any) -> None:
        outermost = not self.__dict__.get("_constructing", False)
        self.__dict__["_constructing"] = True
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                self.__dict__["_constructing"] = False
        if outermost and not self._set_up:  # a subclass may have called setup() itself
            self.setup()

    return build_when_outermost


class Trainer(UpstreamTrainerAPI, ResumeSteps, Saving, DashboardSteps, ReplicaSteps):
    """Owns everything around the training step; subclasses own the step itself.

    ``config``: a JSON path, dict, :class:`Config` or None (packaged defaults).
    ``quicksetup``: also create the experiment directory (or find the run to
    resume), export the config, write the loss log and connect the dashboard
    (False: an in-memory trainer with data, networks, losses and optimisers
    only, e.g. for benchmarks or a quick experiment). ``log_losses``: write the
    loss log (also needs ``save.log_losses``).
    """

    @_setup_after
    def __init__(
        self,
        config: str | Path | Mapping[str, Any] | Config | None = None,
        quicksetup: bool = True,
        log_losses: bool = True,
    ) -> None:
        self.config = Config.load(config)
        self.log_losses = bool(log_losses and self.config.save.log_losses)
        self.procs = join(resolve_device(self.config.common.device))  # or a no-op stand-in
        self.rank, self.world_size = self.procs.rank, self.procs.world_size
        self.device = self.procs.device  # a torchrun rank's own GPU
        self.precision = resolve_precision(self.config.train.mixed_precision, self.device)
        self.memory_format = memory_format(self.config, self.device)
        self.total_epochs = self.config.train.epochs + self.config.train.epochs_decay
        self.batches_per_epoch = 0
        self.last_epoch_time = 0.0
        self.last_losses: dict[str, float] = {}  # as of the last display step
        self.step_observers: list[StepObserver] = []  # e.g. a progress bar; must not sync
        self.experiment_dir: Path | None = None
        self.resume_path: Path | None = None
        self.loss_manager: LossManager | None = None
        self.train_loader: torch.utils.data.DataLoader | None = None
        self.dashboard: Dashboard | None = None
        self._in_fit = False
        self._handled_interrupt: BaseException | None = None
        self.rank_debug: RankDebugLog | None = None
        self.lock: ExperimentLock | None = None  # one run per experiment directory
        self.write_health = WriteHealth(self.log)  # full disk: warn once, retry, stop at 3
        self.run = RunState()  # counters, resume position, timed saves: run_state.py
        self._quicksetup = quicksetup
        self._set_up = False
        self.monitor: Any = None  # per-epoch reporting (validation, lr, ...): run_monitor.py
        self.record: RunRecord | None = None  # run_status.json (main process, experiment dir)
        self.epoch_lines = True  # print epoch_summary() after each epoch (False: silent)
        self._seed_and_threads()
        # setup() runs next, once every __init__ has returned (_setup_after)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each subclass's own ``__init__`` also builds the trainer when it is the outermost."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _setup_after(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @property
    def dist(self) -> Distributed | None:
        """The process group of a ``torchrun`` job; None in a single process.

        Public (callers and tests/test_distributed.py read it); the trainer and the CLI
        themselves go through ``self.procs``, whose single-process stand-in is a no-op.
        """
        return self.procs if isinstance(self.procs, Distributed) else None

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    progress = Forwarded[Progress](
        "run.progress", "Epoch and step counters (moved only by their own methods)."
    )
    current_epoch = Forwarded[int](
        "run.progress.current_epoch", "0-based index of the epoch being (or last) trained."
    )
    epochs_completed = Forwarded[int](
        "run.progress.epochs_completed",
        "Epochs whose batches are all done; also the first epoch of a resumed run.",
    )
    global_step = Forwarded[int](
        "run.progress.global_step", "Optimizer steps over the whole training, across resumes."
    )
    batches_skipped = Forwarded[int](
        "run.epoch_skipped",
        "Batches of the current epoch an earlier session trained (a mid-epoch resume).",
    )

    def log(self, message: str) -> None:
        """One line on stderr, from the main process only."""
        if self.is_main_process:
            log_line(message)

    def _seed_and_threads(self) -> None:
        common = self.config.common
        torch.manual_seed(common.seed + self.rank)
        threads = common.num_threads
        if threads <= 0:
            threads = self.procs.threads_per_rank(usable_cores())
        if threads > 0:
            torch.set_num_threads(threads)

    # -- the loop -----------------------------------------------------------------------

    def fit(self, after_epoch: Callable[[Trainer], None] | None = None) -> None:
        """Train from the current position (0, or where a resume left off) to the last epoch.

        ``after_epoch(trainer)`` runs after each epoch, in place of the printed
        :meth:`epoch_summary` line (the CLI writes it above its progress bar).
        The dashboard thread is started once here and lives for the whole run:
        it is stopped (pending points pushed, env saved) and the visualizer
        closed when the run ends, normally, on Ctrl-C or on an error. An
        interruption between epochs is handled like one inside an epoch.
        """
        with handling_signals():  # SIGTERM stops like Ctrl-C; saves are never cut short
            self._fit(after_epoch)

    def _fit(self, after_epoch: Callable[[Trainer], None] | None) -> None:
        self._start_dashboard_thread()
        self._in_fit = True
        try:
            self.continue_run()  # first, an epoch end a stop cut short
            for epoch in range(self.epochs_completed, self.total_epochs):
                self.train_paired(epoch)
                if after_epoch is not None:
                    after_epoch(self)
                else:
                    self.print_epoch_line()
        except BaseException as exc:
            if self._handled_interrupt is not exc:
                self._stop_dashboard_thread()
                self.on_interrupt(exc)
            raise
        finally:
            self._in_fit = False
            self._finish_dashboard()

    def train_paired(
        self,
        epoch: int,
        on_epoch_start: StepFn | None = None,
        train_step: StepFn | None = None,
        on_epoch_end: StepFn | None = None,
        multithreaded: bool = True,
        callback_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Train epoch ``epoch`` (0-based) over the whole training split.

        Each hook is the callable passed here or else the method of that name;
        ``callback_kwargs`` maps a hook's name to extra keyword arguments. With
        ``multithreaded`` the dashboard updates from its thread (started once,
        stopped after the last epoch, by :meth:`close` or an interruption), else
        inline. Anything that interrupts the epoch (Ctrl-C included) stops the
        thread, flushes the loss log and writes ``interrupted.pt`` (with the
        place in the epoch a resume continues from), then propagates.
        """
        kwargs = _split_callback_kwargs(callback_kwargs)
        batches = self._begin_epoch(epoch, multithreaded)
        started = time.perf_counter()
        try:
            (on_epoch_start or self.on_epoch_start)(**kwargs["on_epoch_start"])
            self._run_batches(train_step or self.train_step, kwargs["train_step"], batches)
            self.sync_replicas()
            self.progress.end_epoch()  # on_epoch_end sees the epoch completed
            (on_epoch_end or self.on_epoch_end)(**kwargs["on_epoch_end"])
        except BaseException as exc:
            self._stop_dashboard_thread()
            self.on_interrupt(exc)
            raise
        self.last_epoch_time = time.perf_counter() - started
        self._end_epoch(epoch)

    def _begin_epoch(self, epoch: int, multithreaded: bool) -> Any:
        """Counters, shuffle and dashboard thread for ``epoch``; returns its batches (after
        those a mid-epoch checkpoint already trained)."""
        if self.train_loader is None:
            raise RuntimeError("train_paired() needs self.train_loader; build the data first")
        self.continue_run()
        skip = self.run.epoch_skipped = self.run.take_resume_skip(epoch)
        self.progress.begin_epoch(epoch, skip)
        self.batches_per_epoch = len(self.train_loader)
        set_sampler_epoch(self.train_loader, epoch)
        self.run.epoch_order = order_state(self.train_loader)
        if self.monitor is not None:
            self.monitor.epoch_started()
        if multithreaded:
            self._start_dashboard_thread()
        else:
            self._stop_dashboard_thread()
        return self._epoch_batches(skip)

    def _end_epoch(self, epoch: int) -> None:
        """After the timed part: records, validation, status record, a loop's epoch line."""
        self.record_epoch_time(epoch)
        if self.monitor is not None:  # validation, lr, throughput, run info (not timed)
            self.monitor.epoch_finished()
        if self.record is not None:  # after everything the epoch does: "finished" is final
            self.record.epoch_done(self.epochs_completed, self.total_epochs)
        if not self._in_fit:  # a loop of train_paired() calls: the line fit() prints
            self.print_epoch_line()
            if self.epochs_completed >= self.total_epochs:
                self._finish_dashboard()  # its last epoch: training is over

    def _run_batches(self, step_fn: StepFn, step_kwargs: dict[str, Any], batches: Any) -> None:
        """The hot loop: move a batch to the device, step, notify observers. No host syncs.

        A signal waits for the step to finish (``protect``), so a stop leaves
        whole steps only and a resume goes on exactly; the one other cost is
        a clock read for the time-based checkpoint.
        """
        device, fmt, progress = self.device, self.memory_format, self.progress
        for idx, (x, y) in enumerate(batches, start=progress.batches_done):
            x = x.to(device, memory_format=fmt, non_blocking=True)
            y = y.to(device, memory_format=fmt, non_blocking=True)
            with protect("the training step"):
                progress.step_started()
                step_fn(x, y, idx, **step_kwargs)
                progress.step_done()
            for observe in self.step_observers:
                observe(self, idx)
            if time.monotonic() >= self.run.timed_save_at and self._batches_left():
                self.save_timed_checkpoint()

    def _batches_left(self) -> bool:
        """Batches of this epoch remain: a timed checkpoint after the last one would only
        duplicate the epoch's end, so the timer stays due until the next epoch's first step."""
        return self.progress.batches_done < self.batches_per_epoch

    # -- setup ------------------------------------------------------------------------

    def setup(self) -> None:
        """Build the trainer, in this order; called once, right after construction.

        The data comes first, so a bad dataset fails before an experiment
        directory is created for a run that cannot start; the dashboard comes
        last, so a run that fails to build leaves no connection behind.
        Without ``quicksetup`` the experiment directory, the resume and the
        dashboard are skipped.
        """
        if self._set_up:
            raise RuntimeError(f"{type(self).__name__}.setup() has already run")
        self._set_up = True
        self.prepare_data()  # data
        if self._quicksetup:  # experiment directory (or the run to resume) and its config
            self.experiment_dir = self.init_experiment_dir()
            self.export_config()
            self.rank_debug = RankDebugLog.from_env(self.experiment_dir, self.rank)
        self.init_networks()  # networks
        self.init_loss_manager()  # losses
        self.init_losses()
        self.init_optimizers()  # optimisers, LR schedules, grad scalers
        if self.resume_path is not None:  # a resumed run continues its saved state
            self.load_training_state(ckpt.load_checkpoint(self.resume_path, self.device))
            if self.run.resume_position is not None:  # inside the epoch it stopped in
                self.progress.begin_epoch(
                    self.epochs_completed, int(self.run.resume_position["batches_done"])
                )
        self.wrap_networks()  # DDP / torch.compile around the restored networks
        if self._quicksetup:  # dashboard, then what it shows once per epoch
            self.init_visualizer()
            self.init_monitor()

    def init_monitor(self) -> None:
        """Subclasses set ``self.monitor`` (validation, lr, throughput, run info) here."""

    def prepare_data(self) -> None:
        """Locate (or generate) the dataset; subclasses also build their loaders here."""
        self.resolve_dataroot()

    def init_networks(self) -> None:
        """Subclasses build their networks on ``self.device`` here."""

    def init_losses(self) -> None:
        """Subclasses register their losses with ``self.loss_manager`` here."""

    def init_optimizers(self) -> None:
        """Subclasses build optimizers, LR schedules and grad scalers here."""

    def wrap_networks(self) -> None:
        """Subclasses wrap the networks the step calls (DDP, ``torch.compile``) here."""

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint's ``state`` (a resumed run); subclasses restore theirs
        and call ``self.progress.restore(...)``."""
        raise NotImplementedError(f"{type(self).__name__} cannot resume: no load_training_state()")

    def resolve_dataroot(self) -> Path:
        """``dataloader.dataroot`` or, when unset, the built-in synthetic dataset (made once).

        The resolved path is written back into the config, so the exported
        config and checkpoints say which data the run used.
        """
        root = dataroot_for(self.config, self.procs.main_first)
        if self.config.dataloader.dataroot is None:
            self.config = self.config.with_overrides({"dataloader.dataroot": str(root.resolve())})
        return root

    def init_loss_manager(self) -> LossManager:
        log_dir = self.experiment_dir if (self.log_losses and self.is_main_process) else None
        self.loss_manager = LossManager(log_dir, log_losses=log_dir is not None)
        return self.loss_manager

    # -- hooks for subclasses ----------------------------------------------------------

    def on_epoch_start(self, **kwargs: Any) -> None:
        """Called before the first batch of every epoch."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_epoch_start()")

    def train_step(self, x: torch.Tensor, y: torch.Tensor, idx: int, **kwargs: Any) -> None:
        """One optimisation step on batch ``idx`` (already on the device)."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_step()")

    def on_epoch_end(self, **kwargs: Any) -> None:
        """Called after the last batch: step schedules, save checkpoints and examples."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_epoch_end()")

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to resume: networks, optimizers, schedules, counters, config."""
        raise NotImplementedError(f"{type(self).__name__} must implement checkpoint_state()")

    def print_epoch_line(self) -> None:
        """The per-epoch line the CLI prints, on stdout (main process; off with
        ``trainer.epoch_lines = False``)."""
        if self.epoch_lines and self.is_main_process:
            print(self.epoch_summary(), flush=True)

    def epoch_summary(self) -> str:
        return (
            f"epoch {self.current_epoch + 1}/{self.total_epochs} took {self.last_epoch_time:.1f}s"
        )

    def close(self) -> None:
        """Stop the dashboard thread if a caller left it running (flush + save) and close the
        visualizer; flush the loss log; leave the process group."""
        self._finish_dashboard()
        self.flush_loss_log()
        if self.lock is not None:
            self.lock.release()
        self.procs.close()
