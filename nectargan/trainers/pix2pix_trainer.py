"""Pix2pix: a U-Net generator and a PatchGAN discriminator trained in alternation.

Per batch (``train_step``):

1. ``y_fake = G(x)``
2. D step: ``D_real`` on ``(x, y)``, ``D_fake`` on ``(x, y_fake.detach())``.
3. G step: ``G_GAN`` (fool D on ``(x, y_fake)``) plus the weighted structure
   losses of the subspec (``G_L1``, and ``G_L2``/``G_SOBEL``/``G_LAP``/``G_VGG``).
4. Every ``update_frequency`` batches: :meth:`Pix2pixTrainer.update_display`.

Nothing in steps 1-3 copies a value to the host, so the CPU never waits for
the device; loss values are read only on display steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nectargan import experiment_layout as layout
from nectargan.config import Config
from nectargan.config.schema import Network
from nectargan.dataset import PairedDataset
from nectargan.dataset.io import has_images
from nectargan.dataset.shape_check import warn_if_not_side_by_side
from nectargan.losses import pix2pix
from nectargan.scheduling import make_pix2pix_lr_scheduler
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.builders import (
    build_adam,
    build_discriminator,
    build_generator,
    load_optimizer_state,
)
from nectargan.trainers.data import make_dataset, make_loader
from nectargan.trainers.precision import eval_mode
from nectargan.trainers.run_monitor import RunMonitor
from nectargan.trainers.trainer import Trainer
from nectargan.trainers.triplet_files import save_triplet
from nectargan.trainers.upstream_api import UpstreamPix2pixAPI
from nectargan.trainers.validation import Validator

EXAMPLES_DIR = layout.EXAMPLES_DIR
DISPLAY_TITLE = layout.TRIPLET_TITLE


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``module`` inside the block.

    During the G step the gradient must flow *through* D to G, but D's own
    weight gradients would be thrown away; skipping them saves work.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def example_indices(n_items: int, n_examples: int) -> list[int]:
    """Evenly spread, fixed items, so every epoch shows the same examples."""
    n_examples = min(n_examples, n_items)
    if n_examples <= 0:
        return []
    return [round(i * (n_items - 1) / max(1, n_examples - 1)) for i in range(n_examples)]


class Pix2pixTrainer(UpstreamPix2pixAPI, Trainer):
    """Pix2pix training with separate Adam optimizers, LR schedules and grad scalers.

    ``loss_subspec``: ``'basic'``, ``'extended'``, ``'basic+vgg'`` or
    ``'extended+vgg'``; None takes ``train.loss.subspec`` from the config.
    """

    def __init__(
        self,
        config: str | Path | Mapping[str, Any] | Config | None = None,
        loss_subspec: str | None = None,
        quicksetup: bool = True,
        log_losses: bool = True,
    ) -> None:
        super().__init__(config, quicksetup=quicksetup, log_losses=log_losses)
        self.loss_subspec = loss_subspec or self.config.train.loss.subspec
        self.update_frequency = self.config.visualizer.visdom.update_frequency
        self.loss_log_every = self.config.save.loss_log_every
        # the trainer is built by Trainer.setup() (data, networks, losses, optimisers, ...)

    # -- setup (called in this order by Trainer.setup) ----------------------------------

    def prepare_data(self) -> None:
        self.build_dataloaders()

    def build_dataloaders(self) -> None:
        """Training loader now (fails fast on a bad dataset); val split read lazily."""
        root = self.resolve_dataroot()
        dl = self.config.dataloader
        train_set = make_dataset(dl, root, "train", train=True)
        self._check_first_item(train_set)
        if self.is_main_process:
            warn_if_not_side_by_side(train_set.paths, root / "train", self.log)
        dl = self._fitted_batch_size(dl, len(train_set), root / "train")
        self.train_loader = self.shard_loader(
            make_loader(train_set, dl, self.device, train=True, seed=self.config.common.seed)
        )
        self.val_dataset: PairedDataset | None = None
        if has_images(root / "val"):  # the example images; an empty val/ is no val/
            self.val_dataset = make_dataset(dl, root, "val", train=False)

    def _fitted_batch_size(self, dl: Any, n_pairs: int, folder: Path) -> Any:
        """A batch larger than this process's share of the data is that share, said once.

        Such a batch was always cut to the whole dataset (the short last batch is kept
        when it is the only one); clamping it only makes every figure that divides by
        the batch size (loader sizing, throughput, resume positions) use the real one.
        """
        share = max(1, n_pairs // self.world_size)
        asked = int(dl["batch_size"])
        if asked <= share:
            return dl
        per = f" per process ({self.world_size} processes)" if self.world_size > 1 else ""
        self.log(
            f"note: batch size {asked} is more than the {n_pairs} training pairs in {folder}"
            f"{per}; using {share}, one batch per epoch"
        )
        return {**dl.to_dict(), "batch_size": share}

    def _check_first_item(self, dataset: PairedDataset) -> None:
        """Decode one pair now, so a broken dataset fails before any training starts."""
        dataset[0]

    def init_networks(self) -> None:
        """G and D on the device in the chosen memory format."""
        cfg = self.config
        self.gen = build_generator(cfg).to(self.device, memory_format=self.memory_format)
        self.disc = build_discriminator(cfg).to(self.device, memory_format=self.memory_format)
        self.gen.check_input_size(cfg.dataloader.crop_size, cfg.dataloader.crop_size)
        self.gen_fwd: nn.Module = self.gen  # what the step calls: see wrap_networks()
        self.disc_fwd: nn.Module = self.disc

    def init_optimizers(self) -> None:
        """Per network: Adam, its LR schedule and its grad scaler (``train.optimizers.*``)."""
        self.opt_G = build_adam(self.gen, self.config, "generator")
        self.opt_D = build_adam(self.disc, self.config, "discriminator")
        self.sched_G = self._lr_schedule(self.opt_G, "generator")
        self.sched_D = self._lr_schedule(self.opt_D, "discriminator")
        self.scaler_G = self.precision.make_scaler()
        self.scaler_D = self.precision.make_scaler()

    def _lr_schedule(self, optimizer: torch.optim.Optimizer, network: Network) -> Any:
        """Hold, then decay linearly: ``train.optimizers.<network>`` or the shared train.* values."""
        s = self.config.train.optimizer_for(network)
        return make_pix2pix_lr_scheduler(
            optimizer, epochs=s.epochs, epochs_decay=s.epochs_decay, target=s.lr_target
        )

    def init_losses(self) -> None:
        """The loss subspec's losses, registered with the loss manager, on the device."""
        self.loss_manager.init_from_spec(
            pix2pix, self.config.train.loss.to_dict(), self.loss_subspec
        )
        self.loss_manager.to(self.device)
        self.structure_losses = [
            name for name in self.loss_manager.names if name.startswith("G_") and name != "G_GAN"
        ]

    def wrap_networks(self) -> None:
        """DDP first (distributed runs), then ``torch.compile`` around it."""
        self.distribute_networks()
        self.compile_networks()

    def distribute_networks(self) -> None:
        """Distributed runs: the step calls G and D through DDP (see ``distributed.py``).

        After a resume every rank restored the same RNG state; a per-rank
        offset keeps their dropout masks and augmentations independent.
        """
        if not self.procs.distributed:
            return
        if self.resume_path is not None:
            torch.manual_seed(int(torch.randint(2**31, ())) + self.rank)
        self.gen_fwd = self.distribute(self.gen)
        self.disc_fwd = self.distribute(self.disc)

    def init_monitor(self) -> None:
        """Main process: per-epoch validation, lr, throughput and run info (run_monitor.py)."""
        if not self.is_main_process or self.experiment_dir is None:
            return
        vcfg = self.config.visualizer.visdom
        validator = None
        if vcfg.val_every > 0:
            validator = Validator.for_dataroot(
                self.config.dataloader,
                Path(self.config.dataloader.dataroot),
                vcfg.val_max_images,
                self.device,
                self.precision,
            )
        self.monitor = RunMonitor(self, validator)
        self.monitor.start()

    def replicated_modules(self) -> dict[str, nn.Module]:
        return {"G": self.gen, "D": self.disc}

    def compile_networks(self) -> None:
        """``train.compile``: the training step runs compiled modules; the originals
        keep the weights, so checkpoints and evaluation are unaffected."""
        if not self.config.train.compile:
            return
        self.gen_fwd = torch.compile(self.gen_fwd)  # DDP-wrapped when distributed
        self.disc_fwd = torch.compile(self.disc_fwd)

    # -- the step (hot path) ------------------------------------------------------------

    def on_epoch_start(self, **kwargs: Any) -> None:
        self.gen.train()
        self.disc.train()

    def train_step(self, x: Tensor, y: Tensor, idx: int, **kwargs: Any) -> None:
        epoch = self.current_epoch + idx / self.batches_per_epoch
        display = idx % self.update_frequency == 0
        record = display or self.global_step % self.loss_log_every == 0
        with self.precision.autocast():
            y_fake = self.gen_fwd(x)
        loss_D = self.discriminator_loss(x, y, y_fake, epoch, record)
        self.backward(loss_D, self.opt_D, self.scaler_D)
        with frozen(self.disc):
            loss_G = self.generator_loss(x, y, y_fake, epoch, record)
            self.backward(loss_G, self.opt_G, self.scaler_G)
        if display:
            self.update_display(x, y, y_fake.detach(), idx)

    def discriminator_loss(
        self, x: Tensor, y: Tensor, y_fake: Tensor, epoch: float, record: bool
    ) -> Tensor:
        """D's loss on a real pair and on the (detached) fake pair."""
        compute = self.loss_manager.compute_loss_xy
        with self.precision.autocast():
            d_real = self.disc_fwd(x, y).float()
            d_fake = self.disc_fwd(x, y_fake.detach()).float()
        loss = compute("D_real", d_real, torch.ones_like(d_real), epoch, record=record)
        return loss + compute("D_fake", d_fake, torch.zeros_like(d_fake), epoch, record=record)

    def generator_loss(
        self, x: Tensor, y: Tensor, y_fake: Tensor, epoch: float, record: bool
    ) -> Tensor:
        """G's adversarial loss plus the weighted structure losses, in fp32."""
        compute = self.loss_manager.compute_loss_xy
        with self.precision.autocast():
            d_fake = self.disc_fwd(x, y_fake).float()
        loss = compute("G_GAN", d_fake, torch.ones_like(d_fake), epoch, record=record)
        y_fake = y_fake.float()
        for name in self.structure_losses:
            loss = loss + compute(name, y_fake, y, epoch, record=record)
        return loss

    @staticmethod
    def backward(loss: Tensor, optimizer: torch.optim.Optimizer, scaler: Any) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    # -- display (every update_frequency batches; drawn by the main process) -------------

    def update_display(self, x: Tensor, y: Tensor, y_fake: Tensor, idx: int) -> None:
        """Push ``[x, y_fake, y]`` and the latest G/D losses to the dashboard.

        The graph's x axis is fractional epochs: ``epoch + idx / batches``.
        This is the only place the step reads loss values back to the host;
        in a distributed run every rank calls it and the values are averaged.
        """
        graph_step = self.current_epoch + idx / len(self.train_loader)
        losses_G, losses_D = self.display_losses([["G"], ["D"]], graph_step)
        if not self.is_main_process:
            return
        self.last_losses = {**losses_G, **losses_D}
        if self.vis is None:
            return
        size = self.config.visualizer.visdom.image_size
        self.dashboard_call(  # any dashboard error: one warning, training goes on
            lambda vis: (
                vis.update_images(
                    x=x[:, :3], y=y_fake[:, :3], z=y[:, :3], title=DISPLAY_TITLE, image_size=size
                ),
                vis.update_loss_graphs(graph_step, losses_G, losses_D),
            )
        )

    def show_history(self) -> None:
        """A resumed run: ``loss_G``/``loss_D`` redrawn from the loss log, from epoch 0 on."""
        dashboard, folder = self.dashboard, self.experiment_dir
        if dashboard is None or folder is None or self.loss_manager is None:
            return
        names = self.loss_manager.get_registered_losses
        groups = {tag: list(names([tag])) for tag in ("G", "D")}
        batches, every = len(self.train_loader), self.update_frequency
        self.dashboard_call(lambda vis: dashboard.replot_losses(folder, groups, batches, every))

    # -- end of epoch ---------------------------------------------------------------------

    def on_epoch_end(self, **kwargs: Any) -> None:
        """Advance the LR schedules, then save (checkpoint, examples, loss log) as due."""
        self.update_schedulers()  # both or neither, even under a signal
        self.flush_loss_log()
        save = self.config.save
        last = self.epochs_completed == self.total_epochs
        if last or _due(self.epochs_completed, save.model_save_rate):
            self.save_checkpoint()
        if _due(self.epochs_completed, save.example_save_rate):
            where = (self.experiment_dir or Path()) / EXAMPLES_DIR
            self.write_health.attempt("examples", where, self.save_examples)

    def write_epoch_end_files(self) -> None:
        """A resume finishing an epoch's end: its checkpoint (again when on disk: the same
        state, and ``latest.json`` names it) and its examples when missing, as due."""
        save, n = self.config.save, self.epochs_completed
        if n == self.total_epochs or _due(n, save.model_save_rate):
            self.save_checkpoint()
        where = (self.experiment_dir or Path()) / EXAMPLES_DIR
        if _due(n, save.example_save_rate) and not (where / layout.example_name(n, 0)).is_file():
            self.write_health.attempt("examples", where, self.save_examples)

    def settle_schedules(self) -> None:
        """Each LR schedule, and its optimizer's lr, at ``epochs_completed``: the lr is a pure
        function of the epochs done, so a stop between the epoch's last batch and its LR
        steps (or between G's and D's) cannot leave a stale lr in memory or in a checkpoint."""
        for sched in (self.sched_G, self.sched_D):
            sched.load_state_dict({"last_epoch": self.epochs_completed})

    def learning_rates(self) -> dict[str, float]:
        return {"G": self.sched_G.get_last_lr()[0], "D": self.sched_D.get_last_lr()[0]}

    def epoch_summary(self) -> str:
        lr = self.learning_rates()
        text = f"{super().epoch_summary()}; next lr G {lr['G']:.3g}, D {lr['D']:.3g}"
        return text + (self.monitor.summary() if self.monitor is not None else "")

    @torch.no_grad()
    def save_examples(self) -> list[Path]:
        """``examples/epoch_NNNN_K.png`` (real_A | fake_B | real_B) for a few val items.

        Only the chosen items are read from disk, never the whole split.
        """
        n = self.config.save.num_examples
        if not self.is_main_process or self.experiment_dir is None or self.val_dataset is None:
            return []
        indices = example_indices(len(self.val_dataset), n)
        if not indices:
            return []
        pairs = [self.val_dataset[i] for i in indices]
        x = torch.stack([p[0] for p in pairs]).to(self.device, memory_format=self.memory_format)
        y = torch.stack([p[1] for p in pairs])
        with eval_mode(self.gen), self.precision.autocast():
            y_fake = self.gen(x)
        folder = self.experiment_dir / EXAMPLES_DIR
        return [
            save_triplet(
                folder / layout.example_name(self.epochs_completed, k), x[k], y_fake[k], y[k]
            )
            for k in range(len(indices))
        ]

    # -- checkpoints ----------------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epochs_completed,
            "global_step": self.global_step,
            "loss_subspec": self.loss_subspec,
            "precision": self.precision.name,
            "config": self.config.to_dict(),
            "networks": {
                "G": _net_state(self.gen, self.opt_G, self.sched_G, self.scaler_G),
                "D": _net_state(self.disc, self.opt_D, self.sched_D, self.scaler_D),
            },
            "rng": _rng_state(self.device),
        }

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Continue where ``state`` left off: weights, optimizers, LR position, counters."""
        nets = state["networks"]
        for key, model, opt, sched, scaler in (
            ("G", self.gen, self.opt_G, self.sched_G, self.scaler_G),
            ("D", self.disc, self.opt_D, self.sched_D, self.scaler_D),
        ):
            _load_net(key, nets[key], model, opt, sched, scaler, self.resume_path)
        self.progress.restore(int(state["epoch"]), int(state["global_step"]))
        self.settle_schedules()  # a checkpoint an older version wrote in the LR-step window
        if "rng" in state:
            _restore_rng(state["rng"], self.device)


def _rng_state(device: torch.device) -> dict[str, Any]:
    """The generators dropout and (in-process) augmentation draw from: a resume goes on
    with the same numbers."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and isinstance(state.get("cuda"), Tensor):
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _due(epochs_completed: int, rate: int) -> bool:
    return rate > 0 and epochs_completed % rate == 0


def _net_state(model: nn.Module, opt: Any, sched: Any, scaler: Any) -> dict[str, Any]:
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict(),
    }


def _load_net(
    key: str,
    state: Mapping[str, Any],
    model: nn.Module,
    opt: Any,
    sched: Any,
    scaler: Any,
    path: Any,
) -> None:
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ckpt.CheckpointError(
            f"checkpoint {str(path)!r}: network {key} does not match the config's architecture "
            f"(train.generator / train.discriminator / dataloader.channels must be the ones the "
            f"run was started with; see config.json in the experiment directory): {exc}"
        ) from exc
    load_optimizer_state(opt, state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
