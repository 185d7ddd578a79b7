"""bf16 autocast must learn like fp32, and the fast optimizer path must survive a resume.

The strict "within 5% of fp32" figure is measured by ``bench/train_step.py
--sanity`` on the demo setup; this test only guards against bf16 breaking
learning outright, with bounds loose enough for a tiny, short run.
"""

from __future__ import annotations

import pytest
import torch

from nectargan.config import Config
from nectargan.dataset import generate_synthetic_dataset
from nectargan.models import PatchGANDiscriminator
from nectargan.trainers import Pix2pixTrainer
from nectargan.trainers.builders import (
    build_adam,
    fused_adam_supported,
    load_optimizer_state,
    memory_format,
)
from nectargan.trainers.evaluate import eval_dataset, evaluate_generator, untrained_baseline

STEPS_PER_EPOCH = 16  # 128 training pairs / batch 8


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return generate_synthetic_dataset(tmp_path_factory.mktemp("prec") / "d", n=160, size=32)


def _train(tmp_path, dataroot, mode: str) -> tuple[float, float]:
    """Test-split L1 after a fixed number of steps, and the untrained generator's."""
    cfg = {
        "common": {"output_directory": str(tmp_path / mode), "experiment_name": mode},
        "dataloader": {
            "dataroot": str(dataroot),
            "load_size": 32,
            "crop_size": 32,
            "batch_size": 8,
        },
        "train": {
            "epochs": 4,
            "epochs_decay": 0,
            "mixed_precision": mode,
            "generator": {"features": 16, "n_downs": 5},
            "discriminator": {"base_channels": 8, "max_channels": 32, "n_layers": 2},
        },
        "save": {"model_save_rate": 0, "example_save_rate": 0, "log_losses": False},
        "visualizer": {"visdom": {"enable": False}},
    }
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    assert trainer.global_step == 4 * STEPS_PER_EPOCH
    test_set = eval_dataset(trainer.config, "test")
    trained = evaluate_generator(trainer.gen, test_set)["metrics"]["l1"]
    return trained, untrained_baseline(trainer.config, test_set)["l1"]


def test_bf16_learns_like_fp32(tmp_path, dataroot):
    fp32, untrained = _train(tmp_path, dataroot, "off")
    bf16, _ = _train(tmp_path, dataroot, "bf16")
    assert fp32 < 0.7 * untrained and bf16 < 0.7 * untrained, (fp32, bf16, untrained)
    assert abs(bf16 - fp32) < 0.25 * fp32, (fp32, bf16)


@pytest.mark.skipif(not fused_adam_supported([torch.zeros(1)]), reason="no fused Adam on CPU")
def test_adam_is_fused_and_stays_fused_after_loading_older_state():
    disc = PatchGANDiscriminator(base_channels=4, max_channels=8, n_layers=1)
    opt = build_adam(disc, Config.load(None))
    assert opt.param_groups[0]["fused"]
    old = torch.optim.Adam(disc.parameters(), lr=1e-3, foreach=True)  # e.g. an older checkpoint
    disc(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)).mean().backward()
    old.step()
    load_optimizer_state(opt, old.state_dict())
    group = opt.param_groups[0]
    assert group["fused"] and not group["foreach"] and group["lr"] == 1e-3
    assert len(opt.state) == len(old.state)
    opt.step()


def test_channels_last_auto_means_cuda_only():
    cfg = Config.load(None)
    assert cfg.train.channels_last == "auto"
    assert memory_format(cfg, torch.device("cpu")) == torch.contiguous_format
    assert memory_format(cfg, torch.device("cuda")) == torch.channels_last
    forced = cfg.with_overrides({"train.channels_last": True})
    assert memory_format(forced, torch.device("cpu")) == torch.channels_last
    off = cfg.with_overrides({"train.channels_last": False})
    assert memory_format(off, torch.device("cuda")) == torch.contiguous_format
