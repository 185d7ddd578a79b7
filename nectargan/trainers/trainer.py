"""Base class for paired-image trainers: experiment directory, config, losses, dashboard,
the epoch loop and what happens when training stops early.

A subclass (see :class:`~nectargan.trainers.pix2pix_trainer.Pix2pixTrainer`)
builds the networks and implements the three hooks ``on_epoch_start``,
``train_step`` and ``on_epoch_end`` plus ``checkpoint_state``; the same hooks
can also be passed to :meth:`Trainer.train_paired` as plain callables.

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

import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from nectargan.config import Config
from nectargan.losses import LossManager
from nectargan.losses.loss_manager import to_floats
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.builders import memory_format
from nectargan.trainers.data import ensure_synthetic_dataset, usable_cores
from nectargan.trainers.distributed import (
    Distributed,
    RankDebugLog,
    interrupt_once,
    set_sampler_epoch,
)
from nectargan.trainers.experiment import create_experiment_dir
from nectargan.trainers.precision import resolve_device, resolve_precision
from nectargan.trainers.timing import record_epoch

CALLBACKS = ("on_epoch_start", "train_step", "on_epoch_end")
CONFIG_FILE = "config.json"
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


def is_local_url(server: str) -> bool:
    """Whether a Visdom server URL points at this machine (where we may start one)."""
    host = urlparse(server if "://" in server else f"http://{server}").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class Trainer:
    """Owns everything around the training step; subclasses own the step itself.

    ``config``: a JSON path, dict, :class:`Config` or None (packaged defaults).
    ``quicksetup``: create the experiment directory, export the config, create
    the loss manager and connect the dashboard now (False leaves that to the
    caller, e.g. for a quick in-memory experiment). ``log_losses``: write the
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
        self.current_epoch = 0  # 0-based index of the epoch being trained
        self.epochs_completed = 0  # also the first epoch of this run after a resume
        self.global_step = 0  # optimizer steps over the whole training, across resumes
        self.batches_per_epoch = 0
        self.last_epoch_time = 0.0
        self.last_losses: dict[str, float] = {}  # as of the last display step
        self.step_observers: list[StepObserver] = []  # e.g. a progress bar; must not sync
        self.experiment_dir: Path | None = None
        self.resume_path: Path | None = None
        self.loss_manager: LossManager | None = None
        self.train_loader: torch.utils.data.DataLoader | None = None
        self.vis: Any = None
        self.dashboard_url: str | None = None
        self._vis_threaded = False
        self._handled_interrupt: BaseException | None = None
        self.rank_debug: RankDebugLog | None = None
        self._seed_and_threads()
        if quicksetup:
            self.quicksetup()

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def log(self, message: str) -> None:
        """One line on stderr, from the main process only."""
        if self.is_main_process:
            print(f"nectargan: {message}", file=sys.stderr, flush=True)

    def _seed_and_threads(self) -> None:
        common = self.config.common
        torch.manual_seed(common.seed + self.rank)
        threads = common.num_threads
        if threads <= 0 and self.dist is not None:
            threads = self.dist.threads_per_rank(usable_cores())
        if threads > 0:
            torch.set_num_threads(threads)

    # -- setup ------------------------------------------------------------------------

    def quicksetup(self) -> None:
        """Data, experiment directory, exported config, loss manager, dashboard.

        The data comes first, so a bad dataset fails before an experiment
        directory is created for a run that cannot start.
        """
        self.prepare_data()
        self.experiment_dir = self.init_experiment_dir()
        self.export_config()
        self.init_loss_manager()
        self.init_visualizer()
        self.rank_debug = RankDebugLog.from_env(self.experiment_dir, self.rank)

    def prepare_data(self) -> None:
        """Locate (or generate) the dataset; subclasses also build their loaders here."""
        self.resolve_dataroot()

    def resolve_dataroot(self) -> Path:
        """``dataloader.dataroot`` or, when unset, the built-in synthetic dataset (made once).

        The resolved path is written back into the config, so the exported
        config and checkpoints say which data the run used.
        """
        dl = self.config.dataloader
        if dl.dataroot is not None:
            root = Path(dl.dataroot).expanduser()
            if not root.is_dir():
                raise FileNotFoundError(
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
        common = self.config.common
        path = None
        if self.is_main_process:
            path = create_experiment_dir(common.output_directory, common.experiment_name)
        # one directory for all ranks: rank 0 claims it, the others learn its name
        return self.dist.broadcast_object(path) if self.dist is not None else path

    def _resume_dir(self, experiment_dir: str | None, epoch: int) -> Path:
        if not experiment_dir:
            raise ValueError(
                "train.resume.experiment_dir: expected the experiment directory to resume "
                "(e.g. output/pix2pix_v3), got null"
            )
        path = Path(experiment_dir).expanduser()
        self.resume_path = ckpt.find_checkpoint(path, epoch)
        return path

    def export_config(self) -> Path | None:
        """Save the effective config; a resume adds ``config.resumeN.json`` beside the first."""
        if not self.is_main_process or self.experiment_dir is None:
            return None
        path = self.experiment_dir / CONFIG_FILE
        n = 1
        while path.exists():
            path = self.experiment_dir / f"config.resume{n}.json"
            n += 1
        return self.config.export(path)

    def init_visualizer(self) -> None:
        """Connect the dashboard; without a server, start one (local URLs) or train without it.

        Training never fails because of the dashboard: every problem here ends
        in a warning and ``self.vis = None``.
        """
        vcfg = self.config.visualizer.visdom
        if not vcfg.enable or not self.is_main_process:
            return
        try:
            from nectargan.visualizer.visdom.visualizer import VisdomVisualizer
        except ImportError as exc:
            self.log(f"dashboard disabled: the Visdom visualizer cannot be imported ({exc})")
            return
        vis = self._connect_visdom(VisdomVisualizer, vcfg)
        if vis is None:
            return
        try:
            vis.clear_env()
        except OSError as exc:
            self.log(f"could not clear Visdom env {vcfg.env_name!r}: {exc}")
        self.vis = vis
        host = "localhost" if is_local_url(vcfg.server) else urlparse(vcfg.server).hostname
        self.dashboard_url = f"http://{host}:{vcfg.port}/env/{vcfg.env_name}"

    def _connect_visdom(self, cls: type, vcfg: Any) -> Any:
        """The visualizer, or None (with a warning) when no server answers.

        With ``autostart`` and a loopback URL the visualizer itself starts the
        managed server (``nectargan visdom start``) when none answers.
        """
        where = f"{vcfg.server}:{vcfg.port}"
        try:
            return cls(
                env=vcfg.env_name,
                server=vcfg.server,
                port=vcfg.port,
                update_interval=vcfg.update_interval,
                autostart=vcfg.autostart and is_local_url(vcfg.server),
            )
        except OSError as exc:  # ConnectionError and friends: training goes on without it
            self.log(f"dashboard disabled, training continues without it: {exc}")
        except ValueError as exc:
            self.log(f"dashboard disabled: bad visualizer.visdom setting for {where}: {exc}")
        return None

    def _start_visualizer_thread(self) -> None:
        if self.vis is None or self._vis_threaded:
            return
        try:
            self.vis.start_thread()
            self._vis_threaded = True
        except Exception as exc:  # the dashboard must never stop training
            self.log(f"dashboard thread did not start, updating inline instead ({exc})")

    def _stop_visualizer_thread(self) -> None:
        """Stop the update thread; it pushes its pending points before it ends."""
        if not self._vis_threaded:
            return
        self._vis_threaded = False
        try:
            self.vis.stop_thread()
        except Exception as exc:
            self.log(f"dashboard thread did not stop cleanly ({exc})")

    def flush_loss_log(self) -> Path | None:
        if self.loss_manager is None or not self.is_main_process:
            return None
        return self.loss_manager.flush_log()

    def save_checkpoint(self, interrupted: bool = False) -> Path | None:
        """Write ``checkpoints/epoch_NNNN.pt`` (or ``interrupted.pt``) from ``checkpoint_state``."""
        if not self.is_main_process or self.experiment_dir is None:
            return None
        if interrupted:
            path = ckpt.checkpoint_dir(self.experiment_dir) / ckpt.INTERRUPTED
        else:
            path = ckpt.epoch_path(self.experiment_dir, self.epochs_completed)
        state = self.checkpoint_state()
        state["interrupted"] = interrupted
        return ckpt.save_checkpoint(path, state)

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
        step. All values travel in one all-reduce and one device-to-host copy.
        """
        groups = [self.loss_manager.get_loss_tensors(q) for q in queries]
        tensors = [t for group in groups for t in group.values()]
        if self.rank_debug is not None:
            local = dict(zip([n for g in groups for n in g], to_floats(tensors), strict=True))
            self.rank_debug.display(x, local)
        if self.dist is not None:
            tensors = self.dist.average(tensors)
        values = iter(to_floats(tensors))
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

        ``after_epoch(trainer)`` runs after each epoch (e.g. to print a summary).
        An interruption between epochs is handled like one inside an epoch.
        """
        try:
            for epoch in range(self.epochs_completed, self.total_epochs):
                self.train_paired(epoch)
                if after_epoch is not None:
                    after_epoch(self)
        except BaseException as exc:
            if self._handled_interrupt is not exc:
                self.on_interrupt(exc)
            raise

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
        (``{'train_step': {'alpha': 0.5}}``). With ``multithreaded`` the
        dashboard updates from its own thread, started here and stopped when
        the epoch ends. If anything interrupts the epoch (Ctrl-C included),
        the thread is stopped with its pending points pushed, the loss log is
        flushed and an ``interrupted.pt`` checkpoint is written, then the
        exception propagates to the caller. Distributed, the sampler reshuffles
        by epoch and :meth:`sync_replicas` runs before ``on_epoch_end`` saves.
        """
        kwargs = _split_callback_kwargs(callback_kwargs)
        start_fn = on_epoch_start or self.on_epoch_start
        step_fn = train_step or self.train_step
        end_fn = on_epoch_end or self.on_epoch_end
        if self.train_loader is None:
            raise RuntimeError("train_paired() needs self.train_loader; build the data first")
        self.current_epoch = epoch
        self.batches_per_epoch = len(self.train_loader)
        set_sampler_epoch(self.train_loader, epoch)
        started = time.perf_counter()
        if multithreaded:
            self._start_visualizer_thread()
        try:
            start_fn(**kwargs["on_epoch_start"])
            self._run_batches(step_fn, kwargs["train_step"])
            self.sync_replicas()
            end_fn(**kwargs["on_epoch_end"])
            self._stop_visualizer_thread()
        except BaseException as exc:
            self._stop_visualizer_thread()
            self.on_interrupt(exc)
            raise
        self.epochs_completed = max(self.epochs_completed, epoch + 1)
        self.last_epoch_time = time.perf_counter() - started
        self.record_epoch_time(epoch)

    def record_epoch_time(self, epoch: int) -> None:
        """Main process: keep the epoch's duration in ``timing.json`` for later reviews."""
        if not self.is_main_process or self.experiment_dir is None:
            return
        try:
            record_epoch(
                self.experiment_dir, epoch + 1, self.last_epoch_time, self.batches_per_epoch
            )
        except OSError as exc:  # a full disk must not end a run that could go on
            self.log(f"could not record the epoch time: {exc}")

    def _run_batches(self, step_fn: StepFn, step_kwargs: dict[str, Any]) -> None:
        """The hot loop: move a batch to the device, step, notify observers. No host syncs."""
        device, fmt = self.device, self.memory_format
        for idx, (x, y) in enumerate(self.train_loader):
            x = x.to(device, memory_format=fmt, non_blocking=True)
            y = y.to(device, memory_format=fmt, non_blocking=True)
            step_fn(x, y, idx, **step_kwargs)
            self.global_step += 1
            for observe in self.step_observers:
                observe(self, idx)

    def on_interrupt(self, exc: BaseException) -> None:
        """Keep what was learned: flush the loss log, write ``interrupted.pt``.

        Each action is attempted even if another fails (or a second Ctrl-C
        arrives), and none of them replaces the exception being handled.
        """
        self._handled_interrupt = exc
        reason = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "failed"
        done = self.epochs_completed
        self.log(f"training {reason} ({done} epoch(s) completed); saving state")
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

    def epoch_summary(self) -> str:
        return (
            f"epoch {self.current_epoch + 1}/{self.total_epochs} took {self.last_epoch_time:.1f}s"
        )

    def close(self) -> None:
        """Stop the dashboard thread if a caller left it running; flush the loss log;
        leave the process group."""
        self._stop_visualizer_thread()
        self.flush_loss_log()
        if self.dist is not None:
            self.dist.close()
