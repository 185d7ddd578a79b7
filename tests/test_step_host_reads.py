"""The training step reads no value back to the host except on display steps and at epoch end.

Two checks. The loss manager's own conversions (``to_floats``, the one batched
device-to-host copy) are counted per step. And every host read our code makes
(``Tensor.item/tolist/numpy``, ``float(t)``, ``int(t)``, ``bool(t)``) is
counted wherever it comes from in ``nectargan``, so a stray ``.item()`` added
to the step fails here on a CPU-only machine too.
"""

from __future__ import annotations

import sys

import pytest
import torch
from _support import tiny_training_config

import nectargan.losses.loss_manager as loss_manager_module
from nectargan.losses.loss_manager import LossManager

HOST_READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__")
UPDATE_FREQUENCY = 4


class HostReads:
    """Counts host reads made from nectargan's own modules (torch internals are not ours)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in HOST_READS:
            monkeypatch.setattr(torch.Tensor, name, self._counting(getattr(torch.Tensor, name)))

    def _counting(self, real):
        def read(tensor, *args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("nectargan."):
                self.count += 1
            return real(tensor, *args, **kwargs)

        return read


def test_recording_alone_never_converts(monkeypatch) -> None:
    calls: list[int] = []
    real = loss_manager_module.to_floats
    monkeypatch.setattr(
        loss_manager_module, "to_floats", lambda ts: calls.append(len(ts)) or real(ts)
    )
    lm = LossManager()
    lm.register_loss("G_L1", lambda x, y: (x - y).abs().mean(), tags=["G"])
    lm.register_loss("D_real", lambda x, y: (x - y).mean(), tags=["D"])
    for step in range(600):  # the old default converted every 256 records, mid-step
        for name in ("G_L1", "D_real"):
            lm.compute_loss_xy(name, torch.tensor([float(step)]), torch.zeros(1), 0)
    assert calls == []
    values = lm.get_loss_values(["G"])  # a display step: pending + shown values together
    assert calls == [1200 + 1] and values == {"G_L1": 599.0}
    assert len(lm.get_history("D_real")) == 600 and calls == [1201]  # nothing left to convert


def _reads_per_step(trainer, monkeypatch) -> dict[int, tuple[int, int]]:
    """Train one epoch; per batch index: (loss-manager conversions, host reads by nectargan).

    Also ``per_step['pending']``: records still unconverted when the epoch ends.
    """
    conversions = [0]
    real = loss_manager_module.to_floats

    def counting(tensors):
        conversions[0] += 1
        return real(tensors)

    monkeypatch.setattr(loss_manager_module, "to_floats", counting)
    reads = HostReads(monkeypatch)
    per_step: dict[int, tuple[int, int]] = {}
    step = trainer.train_step

    def observed(x, y, idx, **kwargs):
        before = conversions[0], reads.count
        step(x, y, idx, **kwargs)
        per_step[idx] = (conversions[0] - before[0], reads.count - before[1])

    def epoch_end(**kwargs):
        per_step["pending"] = len(trainer.loss_manager._pending)
        trainer.on_epoch_end(**kwargs)
        per_step["left"] = len(trainer.loss_manager._pending)

    trainer.train_paired(0, train_step=observed, on_epoch_end=epoch_end)
    return per_step


@pytest.fixture
def trainer(tmp_path, dataroot):
    from nectargan.trainers import Pix2pixTrainer

    cfg = tiny_training_config(
        tmp_path / "out",
        dataroot,
        "sync",
        train={"epochs": 1, "epochs_decay": 0, "mixed_precision": "off"},
        save={"loss_log_every": 1},
        visualizer={"visdom": {"enable": False, "update_frequency": UPDATE_FREQUENCY}},
    )
    return Pix2pixTrainer(cfg)


def test_only_display_steps_read_values_back(trainer, monkeypatch) -> None:
    per_step = _reads_per_step(trainer, monkeypatch)
    pending, left = per_step.pop("pending"), per_step.pop("left")
    assert len(per_step) == len(trainer.train_loader) >= 2 * UPDATE_FREQUENCY
    for idx, (conversions, reads) in per_step.items():
        if idx % UPDATE_FREQUENCY == 0:
            assert conversions == 1 and reads >= 1, (idx, conversions, reads)
        else:
            assert conversions == reads == 0, (idx, conversions, reads)
    assert pending > 0 and left == 0  # the steps after the last display: converted at epoch end


def test_the_check_catches_a_conversion_inside_the_step(trainer, monkeypatch) -> None:
    trainer.loss_manager.sync_every = 8  # the old behaviour: a sync every 8 records
    per_step = _reads_per_step(trainer, monkeypatch)
    steps = {k: v for k, v in per_step.items() if isinstance(k, int)}
    assert any(c for idx, (c, _) in steps.items() if idx % UPDATE_FREQUENCY)
