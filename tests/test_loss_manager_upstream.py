"""Upstream NectarGAN's documented LossManager example runs here (thin aliases of our API).

The calls below follow upstream's "Using the LossManager" and "Querying
Registered Loss Data" docs, with our ``Config`` standing in for its
``ConfigManager(...).data``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nectargan.config import Config
from nectargan.losses.loss_log import read_loss_log
from nectargan.losses.loss_manager import LossManager, RegisteredLoss
from nectargan.scheduling import Schedule


@pytest.fixture
def config() -> Config:
    return Config.load(None).with_overrides({"common.device": "cpu"})


def test_the_documented_example(tmp_path: Path, config: Config) -> None:
    loss_manager = LossManager(config=config, experiment_dir=tmp_path)
    L1 = nn.L1Loss().to(config.common.device)
    loss_manager.register_loss_fn(
        loss_name="mylossfunction",
        loss_fn=L1,
        loss_weight=100.0,
        tags=["descriptive_lookup_tag"],
    )
    with pytest.raises(ValueError, match="already registered"):
        loss_manager.register_loss_fn(loss_name="mylossfunction", loss_fn=L1)

    y = torch.zeros(1, 3, 8, 8)  # ground truth
    y_fake = torch.full((1, 3, 8, 8), 0.25)  # generator output
    result = loss_manager.compute_loss_xy(loss_name="mylossfunction", x=y_fake, y=y)
    assert isinstance(result, torch.Tensor) and result.item() == pytest.approx(25.0)

    losses = loss_manager.get_registered_losses(query=None)
    mylossfn = losses["mylossfunction"]
    assert mylossfn.function is L1 and mylossfn.loss_weight == 100.0
    assert loss_manager.get_registered_losses(query=None, strip=False).keys() == losses.keys()

    assert loss_manager.get_loss_values(precision=2) == {"mylossfunction": 25.0}
    tensors = loss_manager.get_loss_tensors()
    assert tensors["mylossfunction"].item() == pytest.approx(25.0)
    assert loss_manager.get_loss_weights(precision=2) == {"mylossfunction": 100.0}

    query = ["descriptive_lookup_tag"]
    assert list(loss_manager.get_registered_losses(query=query)) == ["mylossfunction"]
    assert list(loss_manager.get_loss_values(query=query)) == ["mylossfunction"]
    assert list(loss_manager.get_loss_tensors(query=query)) == ["mylossfunction"]
    assert list(loss_manager.get_loss_weights(query=query)) == ["mylossfunction"]

    assert loss_manager.update_loss_log(silent=True, capture=False) is None
    log = read_loss_log(tmp_path)["losses"]["mylossfunction"]
    assert log["raw"] == [pytest.approx(0.25)] and log["weight"] == [100.0]


def test_compute_loss_xy_epoch_defaults_to_0_and_drives_the_schedule(config: Config) -> None:
    lm = LossManager(config=config, experiment_dir=None, enable_logging=False)
    lm.register_loss_fn(
        loss_name="ramp",
        loss_fn=nn.L1Loss(),
        loss_weight=1.0,
        schedule=Schedule(0, 10, 0.0, 10.0),
        tags=["G"],
    )
    x, y = torch.ones(2), torch.zeros(2)
    assert lm.compute_loss_xy(loss_name="ramp", x=x, y=y).item() == 0.0
    assert lm.compute_loss_xy(loss_name="ramp", x=x, y=y, epoch=5).item() == pytest.approx(5.0)
    assert lm.get_loss_weights(query=["G"], precision=1) == {"ramp": 5.0}


def test_upstream_keywords_map_onto_ours(tmp_path: Path) -> None:
    lm = LossManager(experiment_dir=tmp_path, enable_logging=False, history_buffer_size=3)
    assert lm.history_size == 3
    lm.register_loss_fn("a", nn.L1Loss())
    for _ in range(5):
        lm.compute_loss_xy("a", torch.ones(1), torch.zeros(1))
    assert len(lm.get_history("a")) == 3 and lm.flush_log() is None  # logging off
    assert not (tmp_path / "loss_log.json").exists()


def test_a_config_device_moves_module_losses(config: Config) -> None:
    moved: list[torch.device] = []

    class Probe(nn.L1Loss):
        def to(self, *args, **kwargs):  # records where the manager sends it
            moved.append(torch.device(args[0]))
            return super().to(*args, **kwargs)

    LossManager(config=config).register_loss_fn(loss_name="p", loss_fn=Probe())
    assert moved == [torch.device("cpu")]
    LossManager(config={"common": {"device": "auto"}}).register_loss_fn("q", Probe())
    assert moved == [torch.device("cpu")]  # 'auto' names no device: left where it is


def test_our_names_stay_primary() -> None:
    lm = LossManager()
    lm.register_loss("G_L1", nn.L1Loss(), weight=100.0, tags=["G"])
    lm.add("G_L2", RegisteredLoss(nn.MSELoss(), 10.0, tags=("G",)))
    out = lm.compute_loss_xy("G_L1", torch.ones(1), torch.zeros(1), 0.0, record=False)
    assert out.item() == 100.0 and lm.get_loss_values() == {}
