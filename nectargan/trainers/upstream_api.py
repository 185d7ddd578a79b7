"""Upstream NectarGAN's trainer API as thin aliases over ours, kept apart from the trainer.

Code written against upstream's README (``Pix2pixTrainer(config=...,
loss_subspec=..., log_losses=...)``, then ``train_paired``, ``save_checkpoint``,
``save_examples`` and ``print_end_of_epoch`` per epoch) and its "building a
trainer" guide (a ``train_step`` made of ``forward_D``/``backward_D``/
``forward_G``/``backward_G``/``update_display``) runs unchanged here.

:class:`UpstreamTrainerAPI` is a base of :class:`~nectargan.trainers.trainer.Trainer`,
:class:`UpstreamPix2pixAPI` one of
:class:`~nectargan.trainers.pix2pix_trainer.Pix2pixTrainer`. A class's own
methods come before its mixin's, so nothing here changes how our training
runs; these only fill in upstream's names, each saying what it maps to and
where it differs from upstream (see docs/upstream.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nectargan import experiment_layout as layout
from nectargan.config import Config
from nectargan.config.upstream_load import load_accepting_upstream
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.data import dataroot_for, make_dataset, make_loader
from nectargan.trainers.precision import eval_mode
from nectargan.trainers.resume.choose import find_checkpoint
from nectargan.trainers.signals import protect
from nectargan.trainers.triplet_files import save_triplet
from nectargan.utils.atomic import atomic_writer

WHO = "nectargan"  # the notice's first word when an upstream config is imported
# upstream's per-network weight files: epoch{N}_net{G|D}.pth.tar in the experiment directory
UPSTREAM_WEIGHTS = re.compile(r"^epoch(\d+)_net([GD])\.pth\.tar$")
STRUCTURE_LOSSES = ("G_L1", "G_L2", "G_SOBEL", "G_LAP", "G_VGG")  # upstream's tuple order


def _alias(ours: str) -> property:
    """Upstream's attribute name, read-only, for our attribute ``ours``."""
    return property(lambda self: getattr(self, ours), doc=f"Upstream's name for ``{ours}``.")


def upstream_weights_name(epoch: int, net: str) -> str:
    return f"epoch{epoch}_net{net.upper()}.pth.tar"


class UpstreamTrainerAPI:
    """Upstream ``Trainer``'s public methods that ours names differently, or lacks."""

    config: Config
    experiment_dir: Path | None

    # -- set-up (ours builds all of it at construction: these are for code that calls them)

    def init_config(self, config: Any) -> None:
        """Upstream: load the config. Ours: ``self.config = Config.load(config)``, an upstream
        file converted first; parts already built keep the config they were built with."""
        self.config = Config.load(load_accepting_upstream(config, WHO))

    def quicksetup(self) -> None:
        """Upstream: experiment directory, loss manager, config copy, Visdom. Ours does these
        at construction; this completes a trainer built with ``quicksetup=False``."""
        if self.experiment_dir is not None:
            return
        self._quicksetup = True
        self.build_output_directory()
        self.export_config()
        self.init_loss_manager()  # now with its loss log in the experiment directory
        self.init_losses()
        self.init_visdom()
        self.init_monitor()

    def build_output_directory(self) -> None:
        """Upstream: create ``<output>/<name>_v<N>/examples``. Ours: the run's directory
        (made at construction; created now if the trainer had none) and its examples/."""
        if self.experiment_dir is None:
            self.experiment_dir = self.init_experiment_dir()
        if self.experiment_dir is not None:
            self.examples_dir.mkdir(parents=True, exist_ok=True)

    @property
    def examples_dir(self) -> Path:
        """Upstream's attribute: where example images go."""
        return (self.experiment_dir or Path()) / layout.EXAMPLES_DIR

    def init_visdom(self) -> None:
        """Upstream: connect Visdom. Ours: :meth:`init_visualizer` (which also starts a local
        server when none answers), unless the dashboard is already connected or disabled."""
        if self.dashboard is None:
            self.init_visualizer()

    def build_dataloader(self, loader_type: str, is_train: bool = True) -> Any:
        """Upstream: a loader of split ``loader_type`` (``'train'``, ``'val'``). Ours: the
        same loaders our trainer builds (training: shuffled, resumable; else ordered)."""
        dl = self.config.dataloader
        dataset = make_dataset(dl, dataroot_for(self.config), loader_type, train=is_train)
        return make_loader(dataset, dl, self.device, train=is_train, seed=self.config.common.seed)

    @staticmethod
    def build_optimizer(
        network: nn.Module, optimizer: Callable[..., Any], lr: float, beta1: float
    ) -> Any:
        """Upstream's: ``optimizer(network.parameters(), lr=lr, betas=(beta1, 0.999))``.
        Ours builds its Adams from the config (``train.optimizers``) instead."""
        return optimizer(network.parameters(), lr=lr, betas=(beta1, 0.999))

    # -- epochs, weights, examples ------------------------------------------------------

    def print_end_of_epoch(self, precision: int = 8, capture: bool = False) -> str | None:
        """Upstream: epoch, time and learning rates. Ours: the line ``nectargan train`` prints
        after each epoch (:meth:`epoch_summary`), returned instead with ``capture``. With
        ``epoch_lines`` on, ``train_paired`` has printed it already: not printed twice."""
        text = self.epoch_summary()
        if capture:
            return text
        if not self.epoch_lines:
            print(text, flush=True)
        return None

    def export_model_weights(self, mod: nn.Module, opt: Any, net: str) -> str:
        """Upstream's per-network file ``epoch{N}_net{net}.pth.tar`` (``state_dict`` and
        ``optimizer``), written atomically; returns its path. Our own checkpoints hold both
        networks and everything a resume needs (:meth:`save_checkpoint`)."""
        folder = self.experiment_dir or Path()
        path = folder / upstream_weights_name(self.epochs_completed, net)
        with atomic_writer(path) as handle:
            torch.save({"state_dict": mod.state_dict(), "optimizer": opt.state_dict()}, handle)
        return path.resolve().as_posix()

    def load_checkpoint(
        self,
        net_type: str,
        network: nn.Module,
        optimizer: Any = None,
        learning_rate: float | None = None,
    ) -> None:
        """Upstream: load ``epoch{N}_net{G|D}.pth.tar`` into ``network`` (and ``optimizer``,
        at ``learning_rate``). Ours reads that file, else the network from our checkpoint of
        that epoch; N is ``train.resume.epoch`` (-1: the latest). To continue a run, use
        ``train.resume`` (``nectargan train --resume``), which restores everything."""
        state = self._network_state(net_type.upper(), self.config.train.resume.epoch)
        network.load_state_dict(state["model"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
            if learning_rate is not None:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate

    def _network_state(self, key: str, epoch: int) -> dict[str, Any]:
        folder = self.experiment_dir or Path()
        files = {
            int(m[1]): folder / m[0]
            for m in (UPSTREAM_WEIGHTS.match(p.name) for p in folder.glob("epoch*_net*.pth.tar"))
            if m and m[2] == key
        }
        chosen = max(files, default=None) if epoch == -1 else epoch
        if chosen in files:
            raw = torch.load(files[chosen], map_location=self.device, weights_only=True)
            return {"model": raw["state_dict"], "optimizer": raw["optimizer"]}
        ours = ckpt.load_checkpoint(find_checkpoint(folder, epoch), self.device)
        return ours["networks"][key]

    def save_xyz_examples(self, network: nn.Module, dataloader: Any) -> list[Path]:
        """Upstream: ``save.num_examples`` items of ``dataloader``'s dataset through
        ``network``, saved as images. Ours: one ``real_A | fake_B | real_B`` PNG per item in
        examples/ (as :meth:`save_examples`), evenly spread items rather than random ones."""
        dataset = dataloader.dataset
        n = min(self.config.save.num_examples, len(dataset))
        spread = torch.linspace(0, len(dataset) - 1, n).round().long().tolist() if n else []
        folder = self.examples_dir
        written = []
        with torch.no_grad(), eval_mode(network), self.precision.autocast():
            for k, i in enumerate(spread):
                x, y = dataset[i]
                y_fake = network(x.unsqueeze(0).to(self.device))[0]
                name = layout.example_name(self.epochs_completed, k)
                written.append(save_triplet(folder / name, x, y_fake, y))
        return written


class UpstreamPix2pixAPI:
    """Upstream ``Pix2pixTrainer``'s step methods and attribute names."""

    def __init__(self, config: Any = None, *args: Any, **kwargs: Any) -> None:
        """An upstream config file (or dict) is converted, with a one-line notice."""
        super().__init__(load_accepting_upstream(config, WHO), *args, **kwargs)

    # -- upstream's attribute names for ours --------------------------------------------

    opt_gen = _alias("opt_G")
    opt_disc = _alias("opt_D")
    gen_lr_scheduler = _alias("sched_G")
    disc_lr_scheduler = _alias("sched_D")
    g_scaler = _alias("scaler_G")
    d_scaler = _alias("scaler_D")

    @property
    def val_loader(self) -> Any:
        """The val split in order, one item per batch (None without val/)."""
        if self.val_dataset is None:
            return None
        return torch.utils.data.DataLoader(self.val_dataset, batch_size=1)

    # -- the step, upstream's way -------------------------------------------------------

    def _step_epoch(self) -> float:
        """The fractional epoch our step passes to the losses (their schedules)."""
        return self.current_epoch + self.progress.batches_done / max(1, self.batches_per_epoch)

    def forward_D(self, x: Tensor, y: Tensor, y_fake: Tensor) -> dict[str, Tensor]:
        """Upstream's: ``{'loss_D', 'loss_D_real', 'loss_D_fake'}``. ``loss_D`` is ours
        (:meth:`discriminator_loss`, lambda_d 0.5 halving the sum as upstream does); the
        two parts are the recorded, detached values."""
        loss_D = self.discriminator_loss(x, y, y_fake, self._step_epoch(), True)
        parts = self.loss_manager.get_loss_tensors(["D_real", "D_fake"])
        return {"loss_D": loss_D, "loss_D_real": parts["D_real"], "loss_D_fake": parts["D_fake"]}

    def forward_G(self, x: Tensor, y: Tensor, y_fake: Tensor) -> Tensor:
        """Upstream's: G's adversarial plus structure losses. Ours: :meth:`generator_loss`."""
        return self.generator_loss(x, y, y_fake, self._step_epoch(), True)

    def backward_D(self, loss_D: Tensor) -> None:
        """Zero D's gradients, backward through D's grad scaler, step D's optimizer."""
        self.backward(loss_D, self.opt_D, self.scaler_D)

    def backward_G(self, loss_G: Tensor) -> None:
        """Zero G's gradients, backward through G's grad scaler, step G's optimizer."""
        self.backward(loss_G, self.opt_G, self.scaler_G)

    def compute_GAN_loss(self, x: Tensor, y_fake: Tensor) -> Tensor:
        """G's adversarial loss alone (``G_GAN``: D should call ``(x, y_fake)`` real)."""
        with self.precision.autocast():
            d_fake = self.disc_fwd(x, y_fake).float()
        compute = self.loss_manager.compute_loss_xy
        return compute("G_GAN", d_fake, torch.ones_like(d_fake), self._step_epoch())

    def compute_structure_loss(self, y: Tensor, y_fake: Tensor) -> tuple[Tensor, ...]:
        """Upstream's tuple ``(L1, L2, SOBEL, LAP, VGG)``, zeros for losses the subspec lacks."""
        epoch, compute = self._step_epoch(), self.loss_manager.compute_loss_xy
        values = {
            name: compute(name, y_fake.float(), y, epoch)
            for name in STRUCTURE_LOSSES
            if name in self.loss_manager
        }
        zero = torch.zeros_like(values["G_L1"])
        return tuple(values.get(name, zero) for name in STRUCTURE_LOSSES)

    def update_schedulers(self) -> None:
        """Advance both LR schedules one epoch (``on_epoch_end`` calls this); a signal waits
        for both, so a stop never leaves G's schedule an epoch ahead of D's."""
        with protect("stepping the learning-rate schedules"):
            self.sched_G.step()
            self.sched_D.step()

    @property
    def extend_loss_spec(self) -> bool:
        return self.loss_subspec.startswith("extended")

    @property
    def vgg_loss_enabled(self) -> bool:
        return self.loss_subspec.endswith("+vgg")
