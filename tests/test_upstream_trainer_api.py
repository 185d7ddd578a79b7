"""Code written against upstream NectarGAN's trainer docs runs unchanged (upstream_api.py).

Two programs follow upstream's documentation: the README's headline loop
(construct with ``config``/``loss_subspec``/``log_losses``, then per epoch
``train_paired``, ``save_checkpoint``, ``save_examples``, ``print_end_of_epoch``),
and the "building a trainer" guide's subclass (a ``train_step`` of
``forward_D``/``backward_D``/``forward_G``/``backward_G``/``update_display``,
an ``on_epoch_start`` printing ``loss_manager.print_weights()``, driven with
``callback_kwargs``). Both take an upstream-layout config file. The other
upstream methods are checked one by one after them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _support import tiny_upstream_config

from nectargan.losses import read_loss_log
from nectargan.trainers.pix2pix_trainer import Pix2pixTrainer

EPOCHS = 2  # the upstream config's 1 epoch + 1 of decay


@pytest.fixture
def upstream_file(tmp_path, dataroot) -> Path:
    path = tmp_path / "train1_config.json"
    path.write_text(json.dumps(tiny_upstream_config(tmp_path / "out", dataroot, "up", 1, 1)))
    return path


def test_the_readme_loop(upstream_file, tmp_path, capsys):
    trainer = Pix2pixTrainer(config=str(upstream_file), loss_subspec="extended", log_losses=True)
    for epoch in range(EPOCHS):
        trainer.train_paired(epoch)
        trainer.save_checkpoint()
        trainer.save_examples()
        trainer.print_end_of_epoch()

    out, err = capsys.readouterr()
    assert "is an upstream NectarGAN config, imported on the fly" in err
    assert out.count("took") == EPOCHS and f"epoch {EPOCHS}/{EPOCHS}" in out  # once each
    trainer.epoch_lines = False  # train_paired silent: print_end_of_epoch prints the line
    trainer.print_end_of_epoch()
    assert capsys.readouterr().out.startswith(f"epoch {EPOCHS}/{EPOCHS} took")
    exp = tmp_path / "out" / "up_v1"
    assert trainer.experiment_dir == exp
    assert {p.name for p in (exp / "checkpoints").glob("epoch_*.pt")} == {
        "epoch_0001.pt",
        "epoch_0002.pt",
    }
    assert (exp / "examples" / "epoch_0002_0.png").is_file()
    assert "G_SOBEL" in read_loss_log(exp)["losses"]  # loss_subspec='extended'


class GuideTrainer(Pix2pixTrainer):
    """A trainer written the way upstream's "building a trainer" guide writes one."""

    def on_epoch_start(self, print_train_start: bool) -> None:
        if print_train_start:
            print(f"Beginning epoch: {self.current_epoch}")
            self.loss_manager.print_weights()

    def train_step(self, x: torch.Tensor, y: torch.Tensor, idx: int, **kwargs) -> None:
        with torch.amp.autocast("cuda"):  # as the guide has it; a no-op without CUDA
            y_fake = self.gen(x)
        losses_D = self.forward_D(x, y, y_fake)
        self.backward_D(losses_D["loss_D"])
        loss_G = self.forward_G(x, y, y_fake)
        self.backward_G(loss_G)
        if idx % self.config.visualizer.visdom.update_frequency == 0:
            self.update_display(x, y, y_fake, idx)


@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")
def test_the_guides_custom_trainer(upstream_file, tmp_path, capsys):
    trainer = GuideTrainer(config=str(upstream_file), loss_subspec="basic", log_losses=True)
    before = [p.detach().clone() for p in trainer.gen.parameters()]
    for epoch in range(EPOCHS):
        trainer.train_paired(epoch, callback_kwargs={"on_epoch_start": {"print_train_start": True}})
        trainer.save_checkpoint()
    out = capsys.readouterr().out
    assert "Beginning epoch: 0" in out and "Beginning epoch: 1" in out
    assert "G_L1 [G]: weight 100" in out and "D_real [D]" in out  # print_weights()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.gen.parameters(), strict=True))
    steps = EPOCHS * len(trainer.train_loader)
    losses = read_loss_log(tmp_path / "out" / "up_v1")["losses"]
    for name in ("G_GAN", "G_L1", "D_real", "D_fake"):  # every step, through forward_D/_G
        assert len(losses[name]["raw"]) == steps, name
    assert (tmp_path / "out" / "up_v1" / "checkpoints" / "epoch_0002.pt").is_file()
    assert trainer.last_losses  # update_display read the losses back


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


@pytest.fixture
def trained(upstream_file):
    trainer = Pix2pixTrainer(config=str(upstream_file), loss_subspec="extended")
    trainer.train_paired(0)
    yield trainer
    trainer.close()


def test_step_pieces_and_schedulers(trained):
    x, y = next(iter(trained.train_loader))
    y_fake = trained.gen(x)
    parts = trained.forward_D(x, y, y_fake)
    assert torch.allclose(parts["loss_D"].detach(), parts["loss_D_real"] + parts["loss_D_fake"])
    gan = trained.compute_GAN_loss(x, y_fake)
    structure = trained.compute_structure_loss(y, y_fake)
    assert gan.ndim == 0 and len(structure) == 5
    assert all(t > 0 for t in structure[:4]) and structure[4] == 0  # no '+vgg': zero VGG
    assert torch.allclose(trained.forward_G(x, y, y_fake), gan + sum(structure), rtol=1e-4)
    assert trained.extend_loss_spec and not trained.vgg_loss_enabled
    epoch = trained.gen_lr_scheduler.last_epoch
    trained.update_schedulers()
    assert trained.gen_lr_scheduler.last_epoch == trained.disc_lr_scheduler.last_epoch == epoch + 1
    assert trained.opt_gen is trained.opt_G and trained.d_scaler is trained.scaler_D


def test_weights_files_loaders_optimizer_and_examples(trained):
    path = Path(trained.export_model_weights(trained.gen, trained.opt_gen, "G"))
    assert path.name == "epoch1_netG.pth.tar" and path.parent == trained.experiment_dir
    fresh = Pix2pixTrainer(config=trained.config.to_dict(), quicksetup=False)
    fresh.experiment_dir = trained.experiment_dir
    fresh.load_checkpoint("G", fresh.gen, fresh.opt_G, learning_rate=1e-5)
    assert same_weights(fresh.gen, trained.gen)
    assert fresh.opt_G.param_groups[0]["lr"] == 1e-5
    fresh.load_checkpoint("D", fresh.disc)  # no upstream file for D: our checkpoint's
    assert same_weights(fresh.disc, trained.disc)

    val = trained.build_dataloader("val", is_train=False)
    x, y = next(iter(val))
    assert x.shape[1:] == y.shape[1:] == (3, 32, 32)
    adam = trained.build_optimizer(trained.gen, torch.optim.Adam, 1e-3, 0.5)
    assert adam.param_groups[0]["betas"] == (0.5, 0.999)

    written = trained.save_xyz_examples(trained.gen, trained.val_loader)
    assert [p.name for p in written] == ["epoch_0001_0.png"]
    assert trained.examples_dir == trained.experiment_dir / "examples"
    assert "epoch 1/2 took" in trained.print_end_of_epoch(capture=True)


def test_quicksetup_later_and_init_visdom(upstream_file, visdom_server, env_name, tmp_path, capsys):
    from nectargan.config.upstream_load import load_accepting_upstream

    config = load_accepting_upstream(str(upstream_file), "test").with_overrides(
        {
            "visualizer.visdom.enable": True,
            "visualizer.visdom.port": visdom_server.port,
            "visualizer.visdom.env_name": env_name,
        }
    )
    trainer = Pix2pixTrainer(config, quicksetup=False)
    assert trainer.experiment_dir is None and trainer.dashboard_url is None
    trainer.quicksetup()
    try:
        assert trainer.experiment_dir == tmp_path / "out" / "up_v1"
        assert (trainer.experiment_dir / "config.json").is_file()
        assert (trainer.experiment_dir / "examples").is_dir()
        assert trainer.dashboard_url.endswith(f"/env/{env_name}")
        trainer.train_paired(0)
    finally:
        trainer.close()  # stops the update thread once it has pushed everything
    assert visdom_server.line_series("loss_G", env_name)  # the real server got the losses
    trainer.init_config(str(upstream_file))
    assert trainer.config.train.generator.n_downs == 5
