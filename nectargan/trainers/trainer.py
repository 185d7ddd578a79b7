"""Base class for paired-image trainers: experiment directory, config, losses, dashboard,
the epoch loop and what happens when training stops early.

A subclass (see :class:`~nectargan.trainers.pix2pix_trainer.Pix2pixTrainer`)
builds its networks, losses and optimisers in the setup hooks that
:meth:`Trainer.setup` calls in order, and implements the three hooks
``on_epoch_start``, ``train_step`` and ``on_epoch_end`` plus
``checkpoint_state``; the step hooks can also be passed to
:meth:`Trainer.train_paired` as plain callables.

Construction has two phases. ``__init__`` (of every class in the hierarchy)
only stores settings and calls no overridable method; when the outermost
``__init__`` has returned, :meth:`Trainer.setup` builds the trainer in one
readable order (config -> data -> networks -> losses -> optimisers ->
dashboard). So a subclass's hooks may use anything its own ``__init__`` set,
and ``Pix2pixTrainer("my.json")`` still returns a ready trainer.

Side effects that only one process of a distributed run may perform (the
experiment directory, the exported config, the dashboard, the loss log,
checkpoints and example images) live in the methods of the "main process
only" section below, each guarded by :attr:`Trainer.is_main_process`. Under
``torchrun`` (``WORLD_SIZE`` > 1) the trainer joins the process group itself;
the few distributed pieces (data sharding, DDP, loss averaging on display
steps, replica sync at epoch end) are in the "distributed runs" section and
:mod:`nectargan.trainers.distributed`, and are no-ops in a single process.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch

from nectargan import experiment_layout as layout
from nectargan.config import Config
from nectargan.errors import ConfigUserError, MissingDataError
from nectargan.losses import LossManager
from nectargan.losses.loss_manager import to_floats
from nectargan.trainers import auto_resume, retention
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers import resume as resuming
from nectargan.trainers.builders import memory_format
from nectargan.trainers.dashboard import Dashboard, is_local_url
from nectargan.trainers.data import (
    ensure_synthetic_dataset,
    order_state,
    restore_order,
    resumable_sampler,
    usable_cores,
)
from nectargan.trainers.distributed import (
    Distributed,
    RankDebugLog,
    interrupt_once,
    set_sampler_epoch,
)
from nectargan.trainers.experiment import create_experiment_dir
from nectargan.trainers.lock import ExperimentLock, claim_experiment
from nectargan.trainers.precision import resolve_device, resolve_precision
from nectargan.trainers.progress import Progress
from nectargan.trainers.run_record import RunRecord
from nectargan.trainers.signals import handling_signals, protect
from nectargan.trainers.timing import record_epoch
from nectargan.trainers.upstream_api import UpstreamTrainerAPI
from nectargan.utils.diskfull import StorageStop, WriteHealth

__all__ = ["Trainer", "is_local_url"]  # is_local_url: kept importable from here

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


def stop_reason(exc: BaseException) -> str:
    """How training ended, for the one line that says so."""
    if getattr(exc, "signal_name", None) == "SIGTERM":
        return "stopped (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, StorageStop):
        return "stopped (no checkpoint could be written)"
    return "failed"


def log_line(message: str) -> None:
    """One ``nectargan:`` line on stderr."""
    print(f"nectargan: {message}", file=sys.stderr, flush=True)


class _SetupAfterInit(type):
    """Calls :meth:`Trainer.setup` once the outermost ``__init__`` has returned.

    A base ``__init__`` that calls subclass hooks runs them before the
    subclass has stored its own settings; deferring the build to the end of
    construction is what lets every ``__init__`` stay a plain list of settings.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        trainer = super().__call__(*args, **kwargs)
        if not trainer._set_up:  # a subclass may already have called setup() itself
            trainer.setup()
        return trainer


class Trainer(UpstreamTrainerAPI, metaclass=_SetupAfterInit):
    """Owns everything around the training step; subclasses own the step itself.

    ``config``: a JSON path, dict, :class:`Config` or None (packaged defaults).
    ``quicksetup``: also create the experiment directory (or find the run to
    resume), export the config, write the loss log and connect the dashboard
    (False: an in-memory trainer with data, networks, losses and optimisers
    only, e.g. for benchmarks or a quick experiment). ``log_losses``: write the
    loss log (also needs ``save.log_losses``).
    """

    def __init__(
        self,
        config: str | Path | Mapping[str, Any] | Config | None = None,
        quicksetup: bool = True,
        log_losses: bool = True,
    ) -> None:
        self.config = Config.load(config)
        self.log_losses = bool(log_losses and self.config.save.log_losses)
        self.rank, self.world_size = 0, 1  # a distributed launcher sets these
        self.device = resolve_device(self.config.common.device)
        self.dist = Distributed.from_env(self.device)  # None unless launched by torchrun
        if self.dist is not None:
            self.rank, self.world_size, self.device = (
                self.dist.rank,
                self.dist.world_size,
                self.dist.device,
            )
            interrupt_once()
        self.precision = resolve_precision(self.config.train.mixed_precision, self.device)
        self.memory_format = memory_format(self.config, self.device)
        self.total_epochs = self.config.train.epochs + self.config.train.epochs_decay
        self.progress = Progress()  # epoch and step counters: moved only by its methods
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
        self._resume_header: dict[str, Any] | None = None  # counters of resume_path
        self._resume_position: dict[str, Any] | None = None  # a mid-epoch checkpoint's place
        self._run_started = False  # files a resume rewrites wait until training starts
        self._epoch_skipped = 0  # batches of this epoch trained before a resume
        self._epoch_order: torch.Tensor | None = None  # shuffle state this epoch was drawn from
        self._save_interval = math.inf  # seconds between time-based checkpoints (main process)
        self._timed_save_at = math.inf  # time.monotonic() of the next one
        self._quicksetup = quicksetup
        self._set_up = False
        self.monitor: Any = None  # per-epoch reporting (validation, lr, ...): run_monitor.py
        self.record: RunRecord | None = None  # run_status.json (main process, experiment dir)
        self.epoch_lines = True  # print epoch_summary() after each epoch (False: silent)
        self._seed_and_threads()
        # setup() runs next, called by the metaclass once every __init__ has returned

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    @property
    def current_epoch(self) -> int:
        """0-based index of the epoch being (or last) trained."""
        return self.progress.current_epoch

    @property
    def epochs_completed(self) -> int:
        """Epochs whose batches are all done; also the first epoch of a resumed run."""
        return self.progress.epochs_completed

    @property
    def global_step(self) -> int:
        """Optimizer steps over the whole training, across resumes."""
        return self.progress.global_step

    @property
    def batches_skipped(self) -> int:
        """Batches of the current epoch an earlier session trained (a mid-epoch resume)."""
        return self._epoch_skipped

    @property
    def vis(self) -> Any:
        """The connected :class:`VisdomVisualizer`, or None without a dashboard."""
        return self.dashboard.vis if self.dashboard is not None else None

    @vis.setter
    def vis(self, vis: Any) -> None:
        """Attach a visualizer you connected yourself (None: no dashboard)."""
        self.dashboard = Dashboard(vis, log_line) if vis is not None else None

    @property
    def dashboard_url(self) -> str | None:
        """The env's page in a browser (the visualizer's ``env_url``), or None."""
        return self.dashboard.url if self.dashboard is not None else None

    def log(self, message: str) -> None:
        """One line on stderr, from the main process only."""
        if self.is_main_process:
            log_line(message)

    def _seed_and_threads(self) -> None:
        common = self.config.common
        torch.manual_seed(common.seed + self.rank)
        threads = common.num_threads
        if threads <= 0 and self.dist is not None:
            threads = self.dist.threads_per_rank(usable_cores())
        if threads > 0:
            torch.set_num_threads(threads)

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
            if self._resume_position is not None:  # inside the epoch it stopped in
                self.progress.begin_epoch(
                    self.epochs_completed, int(self._resume_position["batches_done"])
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
        dl = self.config.dataloader
        if dl.dataroot is not None:
            root = Path(dl.dataroot).expanduser()
            if not root.is_dir():
                raise MissingDataError(
                    f"dataloader.dataroot: {str(root)!r} is not a directory; expected a folder "
                    "with train/ (and val/, test/) subfolders of side-by-side A|B images"
                )
            return root
        make = partial(ensure_synthetic_dataset, self.config.common.output_directory, dl.synthetic)
        # distributed: rank 0 generates it, the others wait, then find it finished
        root = self.dist.main_first(make) if self.dist is not None else make()
        self.config = self.config.with_overrides({"dataloader.dataroot": str(root.resolve())})
        return root

    def init_loss_manager(self) -> LossManager:
        log_dir = self.experiment_dir if (self.log_losses and self.is_main_process) else None
        self.loss_manager = LossManager(log_dir, log_losses=log_dir is not None)
        return self.loss_manager

    # -- main process only: files and dashboard ---------------------------------------

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
        return self.dist.broadcast_object(path) if self.dist is not None else path

    def _auto_resume_decision(self) -> auto_resume.Decision:
        """Rank 0 looks at the existing experiments and decides; the other ranks follow."""
        decision = None
        if self.is_main_process:
            decision = auto_resume.decide(self.config, self.log)
        if self.dist is not None:
            decision = self.dist.broadcast_object(decision)
        message = auto_resume.describe(decision, self.total_epochs)
        if decision.complete:
            if self.dist is not None:
                self.dist.close()
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
        self.resume_path = ckpt.find_checkpoint(path, epoch)
        header = resuming.read_header(self.resume_path)  # broken file: named, with the fix
        resuming.check_architecture(header["config"], self.config, self.resume_path)
        resuming.check_epochs(self.config, int(header["epoch"]), self.resume_path)
        keys = ("epoch", "global_step", "resume_global_step", "position", "loss_steps")
        self._resume_header = {k: header[k] for k in keys if k in header}
        if isinstance(header.get("data_order"), torch.Tensor):
            self._resume_header["data_order"] = header["data_order"].clone()
            self._epoch_order = self._resume_header["data_order"]  # a stop before the 1st epoch
        self._resume_position = self._usable_position(header)
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
        self._resume_header["resume_global_step"] = int(position["epoch_start_step"])
        return None

    def export_config(self) -> Path | None:
        """Save the effective config; a resume adds ``config.resumeN.json`` beside the first."""
        if not self.is_main_process or self.experiment_dir is None:
            return None
        if self._resume_header is not None and not self._run_started:
            return None  # written by start_run(), once the resume really starts
        path = self.experiment_dir / CONFIG_FILE
        n = 1
        while path.exists():
            path = self.experiment_dir / layout.resume_config_name(n)
            n += 1
        return self.config.export(path)

    def init_visualizer(self) -> None:
        """Connect the dashboard; without a server, start one (local URLs) or train without it.

        Training never fails because of the dashboard: every problem here ends
        in a warning and ``self.vis = None``. When the trainer is dropped (or
        the process exits) with the update thread still running, the thread
        is stopped, so its last points are pushed and the env saved.
        """
        vcfg = self.config.visualizer.visdom
        if not vcfg.enable or not self.is_main_process:
            return
        self.dashboard = Dashboard.connect(vcfg, log_line)  # main process only: no rank check
        if self.dashboard is not None:
            weakref.finalize(self, self.dashboard.stop)

    def _start_dashboard_thread(self) -> None:
        if self.dashboard is not None:
            self.dashboard.start()

    def _stop_dashboard_thread(self) -> None:
        """Stop the update thread; it pushes its pending points and saves before it ends."""
        if self.dashboard is not None:
            self.dashboard.stop()

    def _finish_dashboard(self) -> None:
        """Training is over: stop the thread (flush + save) and close the visualizer."""
        if self.dashboard is not None:
            self.dashboard.finish()

    def dashboard_call(self, send: Callable[[Any], None]) -> None:
        """``send(self.vis)``; any error turns the dashboard off (one warning), training goes on."""
        if self.dashboard is None:
            return
        try:
            send(self.dashboard.vis)
        except Exception as exc:
            dashboard, self.dashboard = self.dashboard, None
            self.log(
                f"dashboard disabled after an error, training goes on without it: "
                f"{type(exc).__name__}: {exc}"
            )
            dashboard.stop()
            dashboard.finish()

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
        self._arm_timed_save()
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
            self._arm_timed_save()
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
            return state
        state["data_order"] = self._epoch_order
        state["position"] = {
            "epoch": p.current_epoch,
            "batches_done": p.batches_done,
            "batches_per_epoch": len(self.train_loader) if self.train_loader is not None else 0,
            "epoch_start_step": self.global_step - p.batches_done,
            "exact": not p.in_step,
        }
        return state

    def _arm_timed_save(self) -> None:
        self._timed_save_at = time.monotonic() + self._save_interval

    def save_examples(self) -> list[Path]:
        """Subclasses write example outputs for the epoch just completed."""
        return []

    # -- distributed runs (each a no-op in a single process) ----------------------------

    def shard_loader(self, loader: torch.utils.data.DataLoader) -> torch.utils.data.DataLoader:
        """This rank's share of the training data (``batch_size`` is per process)."""
        if self.dist is None:
            return loader
        return self.dist.shard_loader(loader, seed=self.config.common.seed)

    def distribute(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module the step should call: DDP around ``module`` when distributed."""
        return self.dist.wrap(module) if self.dist is not None else module

    def replicated_modules(self) -> dict[str, torch.nn.Module]:
        """Networks every rank holds a copy of; subclasses list theirs."""
        return {}

    def display_losses(self, queries: list[list[str]], x: float) -> list[dict[str, float]]:
        """Latest losses per query, averaged over ranks; read on display steps only.

        A collective in a distributed run: every rank must call it at the same
        step. All values travel in one all-reduce and one device-to-host copy,
        which also converts the loss manager's pending records.
        """
        groups = [self.loss_manager.get_loss_tensors(q) for q in queries]
        tensors = [t for group in groups for t in group.values()]
        if self.rank_debug is not None:
            local = dict(zip([n for g in groups for n in g], to_floats(tensors), strict=True))
            self.rank_debug.display(x, local)
        if self.dist is not None:
            tensors = self.dist.average(tensors)
        values = iter(self.loss_manager.read_back(tensors))  # + pending records, one transfer
        return [{name: next(values) for name in group} for group in groups]

    def sync_replicas(self) -> None:
        """End of an epoch: make the replicas equal where DDP does not (BatchNorm stats)."""
        modules = self.replicated_modules()
        if self.dist is not None:
            self.dist.average_buffers(modules.values())
        if self.rank_debug is not None:
            self.rank_debug.digests(self.current_epoch + 1, modules)

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

        Each hook is the callable passed here or else the method of the same
        name; ``callback_kwargs`` maps hook name to extra keyword arguments
        (``{'train_step': {'alpha': 0.5}}``).

        With ``multithreaded`` the dashboard updates from its own thread. When
        this is called epoch by epoch (not from :meth:`fit`), the thread is
        started by the first such epoch and left running between epochs (each
        stop pushes everything and saves the whole env); it is stopped, with
        its pending points pushed and the env saved, after the last epoch
        (``epochs_completed == total_epochs``), by :meth:`close`, on an
        interruption, or when the trainer is dropped. ``multithreaded=False``
        stops a running thread first, so this epoch updates inline.

        If anything interrupts the epoch (Ctrl-C included), the thread is
        stopped, the loss log is flushed and an ``interrupted.pt`` checkpoint
        is written (with the position inside the epoch, which a resume
        continues from), then the exception propagates to the caller. Distributed,
        the sampler reshuffles by epoch and :meth:`sync_replicas` runs before
        ``on_epoch_end`` saves. The epoch counts as completed
        (``epochs_completed``) once its batches are done, so ``on_epoch_end``
        sees it.
        """
        kwargs = _split_callback_kwargs(callback_kwargs)
        start_fn = on_epoch_start or self.on_epoch_start
        step_fn = train_step or self.train_step
        end_fn = on_epoch_end or self.on_epoch_end
        if self.train_loader is None:
            raise RuntimeError("train_paired() needs self.train_loader; build the data first")
        self.start_run()
        skip = self._take_resume_skip(epoch)
        self.progress.begin_epoch(epoch, skip)
        self._epoch_skipped = skip
        self.batches_per_epoch = len(self.train_loader)
        set_sampler_epoch(self.train_loader, epoch)
        self._epoch_order = order_state(self.train_loader)
        if self.monitor is not None:
            self.monitor.epoch_started()
        started = time.perf_counter()
        if multithreaded:
            self._start_dashboard_thread()
        else:
            self._stop_dashboard_thread()
        try:
            start_fn(**kwargs["on_epoch_start"])
            self._run_batches(step_fn, kwargs["train_step"], self._epoch_batches(skip))
            self.sync_replicas()
            self.progress.end_epoch()
            end_fn(**kwargs["on_epoch_end"])
        except BaseException as exc:
            self._stop_dashboard_thread()
            self.on_interrupt(exc)
            raise
        self.last_epoch_time = time.perf_counter() - started
        self.record_epoch_time(epoch)
        if self.monitor is not None:  # validation, lr, throughput, run info (not timed)
            self.monitor.epoch_finished()
        if self.record is not None:  # after everything the epoch does: "finished" is final
            self.record.epoch_done(self.epochs_completed, self.total_epochs)
        if not self._in_fit:  # a loop of train_paired() calls: the line fit() prints
            self.print_epoch_line()
        if not self._in_fit and self.epochs_completed >= self.total_epochs:
            self._finish_dashboard()  # the per-epoch loop's last epoch: training is over

    def start_run(self) -> None:
        """Once, before the first epoch of this run: a resume writes its files only now.

        ``config.resumeN.json`` records a resume that really started, and the
        loss log and ``timing.json`` are cut back to the checkpoint, so the
        training this resume discards leaves no trace (one monotonic history).
        The shuffle state is restored, so the next epoch (or the rest of the
        one a mid-epoch checkpoint stopped in) draws the order it would have.
        The time-based checkpoint's clock starts here.
        """
        if self._run_started:
            return
        self._run_started = True
        minutes = self.config.save.every_minutes
        if minutes > 0 and self.is_main_process and self.experiment_dir is not None:
            self._save_interval = 60.0 * minutes
        self._arm_timed_save()
        if self.is_main_process and self.experiment_dir is not None:
            self.record = RunRecord.begin(
                self.experiment_dir, self.epochs_completed, self.total_epochs, self.log
            )
        header = self._resume_header
        if header is None:
            return
        restore_order(self.train_loader, header.get("data_order"))
        position = self._resume_position
        # an old-style checkpoint, or one whose place no longer fits: the epoch restarts
        if position is None and "resume_global_step" in header:
            self.progress.restore(self.epochs_completed, int(header["resume_global_step"]))
        self._rewind_history(header, position)
        self.show_history()

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
                dropped = resuming.rewind_loss_log(self.loss_manager, done, keep_steps=keep)
                resuming.rewind_timing(self.experiment_dir, done)
            if dropped:
                where = f"after step {self.global_step}" if keep else f"from epoch {done + 1} on"
                self.log(
                    f"loss log: dropped {dropped} record(s) {where}, left by "
                    f"training this resume discards"
                )
        if counts is not None and self.loss_manager is not None:
            self.loss_manager.restore_step_counts(counts)

    def _take_resume_skip(self, epoch: int) -> int:
        """Batches of ``epoch`` a mid-epoch checkpoint already trained (once; else 0)."""
        position, self._resume_position = self._resume_position, None
        if position is None or epoch != int(position["epoch"]):
            return 0
        return int(position["batches_done"])

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
                self.batches_per_epoch - self._epoch_skipped,  # the steps this time took
            ),
        )

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
            if time.monotonic() >= self._timed_save_at and self._batches_left():
                self.save_timed_checkpoint()

    def _batches_left(self) -> bool:
        """Batches of this epoch remain: a timed checkpoint after the last one would only
        duplicate the epoch's end, so the timer stays due until the next epoch's first step."""
        return self.progress.batches_done < self.batches_per_epoch

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

    def _save_state_on_the_way_out(self, exc: BaseException) -> None:
        done = f"{self.epochs_completed} epoch(s) completed"
        if self.progress.mid_epoch and self.progress.batches_done:
            done += f", {self.progress.batches_done} batch(es) of epoch {self.current_epoch + 1}"
        self.log(f"training {stop_reason(exc)} ({done}); saving state")
        for what, action in (
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
        if self.dist is not None:
            self.dist.close()
