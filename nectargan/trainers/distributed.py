"""Multi-process training on ``torch.distributed``, as launched by ``torchrun``.

A run is distributed when the launcher says so: ``WORLD_SIZE`` > 1 in the
environment (``torchrun`` also sets ``RANK``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``). Without it nothing
here runs: no process group, no wrappers, no collectives. ``NECTARGAN_FORCE_DDP=1``
under a launcher makes a job of one rank take the distributed path too (process
group, DDP wrappers, sampler): the only way to try ``nccl`` on a machine with one
GPU (``bench/gpu_check.py``).

Design (see ``docs/distributed.md``):

* Networks are wrapped in :class:`GanDDP` (DistributedDataParallel) with
  ``broadcast_buffers=False``: the pix2pix step calls D three times per step,
  and DDP's per-forward buffer broadcast would rewrite BatchNorm's running
  stats in place between a forward and its backward. BatchNorm therefore
  normalises with per-rank batch statistics (SyncBatchNorm has no CPU
  kernel); the running stats, used only in eval mode, are averaged over
  ranks at the end of every epoch, so every rank (and every checkpoint)
  holds the same complete state.
* During the G step D is frozen (``requires_grad`` off) and only carries the
  gradient through to G; :class:`GanDDP` then calls the plain module, so D's
  reducer never waits for gradients that cannot come.
* Loss values are averaged over ranks only on display steps, in one
  all-reduce of all losses together: the hot loop has no collective besides
  DDP's gradient all-reduce.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from nectargan.losses.loss_manager import to_floats
from nectargan.trainers.data import ResumableSampler
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.launch import launched_world_size

T = TypeVar("T")
RANK_DEBUG_ENV = "NECTARGAN_RANK_DEBUG"
RANK_DEBUG_DIR = "rank_losses"
TIMEOUT_ENV = "NECTARGAN_DIST_TIMEOUT"
FORCE_ENV = "NECTARGAN_FORCE_DDP"


def distributed_launch() -> bool:
    """A launcher started more than one rank, or one rank with ``NECTARGAN_FORCE_DDP=1``."""
    if launched_world_size() > 1:
        return True
    return os.environ.get(FORCE_ENV) == "1" and "RANK" in os.environ


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA tensors, ``gloo`` for CPU ones: the standard pairing."""
    return "nccl" if device.type == "cuda" else "gloo"


class GanDDP(DistributedDataParallel):
    """DDP that steps aside while the wrapped network is frozen.

    A GAN calls D with its parameters frozen to train G: the gradient goes
    *through* D, none goes *to* it. Running that call through DDP would make
    D's reducer expect gradients that never arrive; the plain module computes
    exactly the same thing.
    """

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        first = next(self.module.parameters(), None)
        if first is not None and not first.requires_grad:
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


@dataclass
class Distributed:
    """This process's place in the job, and the few collectives the trainer needs."""

    distributed = True  # class attribute, as on SingleProcess

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed | None:
        """Join the process group when launched with ``WORLD_SIZE`` > 1 (or forced); else None."""
        if not distributed_launch():
            return None
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", launched_world_size()))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        backend = backend_for(device)
        if not dist.is_initialized():
            timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "600")))
            dist.init_process_group(backend, timeout=timeout)
        return cls(rank, dist.get_world_size(), local_rank, local_world, device, backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def threads_per_rank(self, cores: int) -> int:
        """Share this node's cores among its ranks, so they do not fight over them."""
        return max(1, cores // max(1, self.local_world_size))

    # -- coordination ------------------------------------------------------------------

    def barrier(self) -> None:
        dist.barrier()

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (e.g. the experiment directory it created)."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def main_first(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0, then on the others (finding its work done, e.g. a dataset)."""
        result = fn() if self.is_main else None
        self.barrier()
        return result if self.is_main else fn()

    # -- models and data ---------------------------------------------------------------

    def wrap(self, module: nn.Module) -> GanDDP:
        """DDP around ``module`` (weights broadcast from rank 0 now)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return GanDDP(module, device_ids=ids, **no_forward_buffer_sync())

    def shard_loader(self, loader: DataLoader, seed: int) -> DataLoader:
        """The same loader over this rank's share of the data, reshuffled every epoch.

        ``batch_size`` stays per process, so one optimizer step sees
        ``world_size * batch_size`` images. Every rank gets the same number of
        batches (the sampler pads), so no rank waits for a missing step.
        """
        sampler = DistributedSampler(
            loader.dataset,
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=True,
            seed=seed,
            drop_last=len(loader.dataset) >= self.world_size * (loader.batch_size or 1),
        )
        return DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            sampler=ResumableSampler(sampler),
            drop_last=loader.drop_last,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
            persistent_workers=loader.num_workers > 0,
        )

    # -- values ------------------------------------------------------------------------

    def average(self, tensors: list[Tensor]) -> list[Tensor]:
        """Mean over ranks of scalar tensors, in one all-reduce."""
        if not tensors:
            return []
        flat = torch.stack([t.detach().float().reshape(()) for t in tensors]).to(self.device)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        return list((flat / self.world_size).unbind())

    def average_buffers(self, modules: Iterable[nn.Module]) -> None:
        """Average floating-point buffers (BatchNorm running stats) over ranks, in place."""
        for module in modules:
            for buf in module.buffers():
                if buf.is_floating_point():
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf.div_(self.world_size)

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


class SingleProcess:
    """The one-process stand-in for :class:`Distributed`: every collective is a no-op.

    The trainer always talks to one of these two, so a plain run and a
    ``torchrun`` job go through the same lines instead of ``if dist is None``.
    """

    distributed = False
    rank, world_size, local_rank, local_world_size = 0, 1, 0, 1
    is_main = True
    backend = "none"

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def threads_per_rank(self, cores: int) -> int:
        return 0  # torch's own default: the process has the machine to itself

    def barrier(self) -> None:
        pass

    def broadcast_object(self, obj: T) -> T:
        return obj

    def main_first(self, fn: Callable[[], T]) -> T:
        return fn()

    def wrap(self, module: nn.Module) -> nn.Module:
        return module

    def shard_loader(self, loader: DataLoader, seed: int) -> DataLoader:
        return loader

    def average(self, tensors: list[Tensor]) -> list[Tensor]:
        return tensors

    def average_buffers(self, modules: Iterable[nn.Module]) -> None:
        pass

    def close(self) -> None:
        pass


Processes = Distributed | SingleProcess


def join(device: torch.device) -> Processes:
    """This process's group: :class:`Distributed` under ``torchrun`` (with each signal
    handled once, see :func:`interrupt_once`), else a :class:`SingleProcess`."""
    group = Distributed.from_env(device)
    if group is None:
        return SingleProcess(device)
    interrupt_once()
    return group


def no_forward_buffer_sync() -> dict[str, bool]:
    """DDP's switch for "no buffer broadcast before each forward", by the name this torch knows.

    Newer torch deprecates ``broadcast_buffers`` for ``forward_sync_buffers``
    (which still syncs once at construction: all ranks start from rank 0's stats).
    """
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in params:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def set_sampler_epoch(loader: DataLoader | None, epoch: int) -> None:
    """A DistributedSampler shuffles by ``seed + epoch``: tell it which epoch this is."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler, or a ResumableSampler around one
        sampler.set_epoch(epoch)


def state_digest(module: nn.Module) -> str:
    """CRC32 of every parameter and buffer: equal digests mean bitwise-equal replicas."""
    crc = 0
    for name, tensor in module.state_dict().items():
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(tensor.detach().cpu().contiguous().numpy().tobytes(), crc)
    return f"{crc:08x}"


class RankDebugLog:
    """``<exp>/rank_losses/rank{r}.json``: this rank's own values, for checking the averages.

    Enabled by ``NECTARGAN_RANK_DEBUG=1``. Holds the local (not averaged)
    losses of every display step and a digest of each network after every
    epoch. Costs one extra host copy per display step, so it is off by default.
    """

    def __init__(self, experiment_dir: Path, rank: int) -> None:
        self.path = Path(experiment_dir) / RANK_DEBUG_DIR / f"rank{rank}.json"
        self.data: dict[str, Any] = {"rank": rank, "display": [], "digests": {}}

    @classmethod
    def from_env(cls, experiment_dir: Path | None, rank: int) -> RankDebugLog | None:
        if experiment_dir is None or os.environ.get(RANK_DEBUG_ENV, "") in ("", "0"):
            return None
        return cls(experiment_dir, rank)

    def display(self, x: float, losses: Mapping[str, float]) -> None:
        self.data["display"].append({"x": x, "losses": dict(losses)})
        self._write()

    def digests(self, epoch: int, modules: Mapping[str, nn.Module]) -> None:
        self.data["digests"][str(epoch)] = {k: state_digest(m) for k, m in modules.items()}
        self._write()

    def _write(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data), fsync=False)


def interrupt_once() -> None:
    """First SIGINT or SIGTERM raises KeyboardInterrupt; later ones are ignored.

    Ctrl-C reaches a rank twice: from the terminal, then forwarded by
    ``torchrun`` (SIGINT or SIGTERM, depending on its version). The repeat
    must not cut short the saving that the first one started, and a SIGTERM
    must not kill rank 0 before it has written its checkpoint. Handlers
    installed by someone else are left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    state = {"fired": False}

    def handler(signum: int, frame: Any) -> None:
        if state["fired"]:
            return
        state["fired"] = True
        from nectargan.trainers.signals import Interrupted  # exit status 128 + signum

        raise Interrupted(signum)

    for signum, default in (
        (signal.SIGINT, signal.default_int_handler),
        (signal.SIGTERM, signal.SIG_DFL),
    ):
        if signal.getsignal(signum) is default:
            signal.signal(signum, handler)


class ReplicaSteps:
    """Mixed into :class:`~nectargan.trainers.trainer.Trainer`: the distributed pieces of a
    run (data sharding, DDP, loss averaging on display steps, replica sync), each going
    through ``self.procs``, so a no-op in a single process."""

    def shard_loader(self, loader: DataLoader) -> DataLoader:
        """This rank's share of the training data (``batch_size`` is per process)."""
        return self.procs.shard_loader(loader, seed=self.config.common.seed)

    def distribute(self, module: nn.Module) -> nn.Module:
        """The module the step should call: DDP around ``module`` when distributed."""
        return self.procs.wrap(module)

    def replicated_modules(self) -> dict[str, nn.Module]:
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
        tensors = self.procs.average(tensors)
        values = iter(self.loss_manager.read_back(tensors))  # + pending records, one transfer
        return [{name: next(values) for name in group} for group in groups]

    def sync_replicas(self) -> None:
        """End of an epoch: make the replicas equal where DDP does not (BatchNorm stats)."""
        modules = self.replicated_modules()
        self.procs.average_buffers(modules.values())
        if self.rank_debug is not None:
            self.rank_debug.digests(self.current_epoch + 1, modules)
