"""A stop between an epoch's last batch and its learning-rate steps: the lr stays right.

The epoch's end steps G's LR schedule, then D's. A stop that lands before
those steps, or between them, used to leave a schedule (and its optimizer's
lr) one epoch behind: ``interrupted.pt`` held a scheduler counter and an lr
that disagreed, and ``fit()`` called again on the same trainer trained the
next epoch with last epoch's lr. Each test stops an in-process run at one
exact place in that window, continues it (the same trainer, or a new one
resuming from ``interrupted.pt``), and compares the lr of every later step and
the final weights with a run never stopped (CPU, fp32, no loader workers).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
import torch
from _support import tiny_training_config

from nectargan.trainers import Pix2pixTrainer, load_checkpoint

STOP_AT = 2  # the stop comes as epoch 2 (of 4, 2 of them decaying) ends
SECTIONS = {
    "common": {"device": "cpu"},
    "dataloader": {"num_workers": 0},
    "train": {"epochs": 2, "epochs_decay": 2, "mixed_precision": "off"},
    "save": {"model_save_rate": 1},
}


def _trainer(out, dataroot, **resume) -> Pix2pixTrainer:
    """The tiny 4-epoch run in ``out``; ``resume`` fills ``train.resume``."""
    cfg = tiny_training_config(out, dataroot, "lr", **SECTIONS)
    if resume:
        cfg["train"]["resume"] = resume
    trainer = Pix2pixTrainer(cfg)
    trainer.epoch_lines = False
    return trainer


def _record_lrs(trainer: Pix2pixTrainer, lrs: dict[int, tuple[float, float]]) -> None:
    """After every step: the lr G and D trained it with, by global step."""

    def observe(t: Pix2pixTrainer, _idx: int) -> None:
        lrs[t.global_step] = (t.opt_G.param_groups[0]["lr"], t.opt_D.param_groups[0]["lr"])

    trainer.step_observers.append(observe)


def _weights(trainer: Pix2pixTrainer) -> dict[str, torch.Tensor]:
    nets = {"G": trainer.gen, "D": trainer.disc}
    return {f"{k}.{n}": t.clone() for k, m in nets.items() for n, t in m.state_dict().items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dataroot):
    """The run never stopped: its per-step lrs, final weights and per-epoch lrs."""
    trainer = _trainer(tmp_path_factory.mktemp("ref"), dataroot)
    lrs: dict[int, tuple[float, float]] = {}
    _record_lrs(trainer, lrs)
    trainer.fit()
    trainer.close()
    assert len({lr for lr in lrs.values()}) == 3  # base, base, 2/3, 1/3: the window matters
    return lrs, _weights(trainer)


def _stop_once(trainer: Pix2pixTrainer, sched_name: str, how: Callable[[], None]) -> None:
    """``how()`` the first time ``trainer.<sched_name>.step()`` runs as epoch STOP_AT ends,
    before the step itself (so ``sched_G``: before both steps; ``sched_D``: between them)."""
    sched = getattr(trainer, sched_name)
    step = sched.step

    def stopping_step() -> None:
        if trainer.epochs_completed == STOP_AT and not stopping_step.done:
            stopping_step.done = True
            how()
        step()

    stopping_step.done = False
    sched.step = stopping_step


def _raise() -> None:
    raise KeyboardInterrupt  # what a signal's handler raises, landing at this bytecode


def _signal() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered inside the window


def _assert_consistent(interrupted: dict, lrs: dict[int, tuple[float, float]]) -> None:
    """``interrupted.pt``: each scheduler at the epochs done, its optimizer at that lr."""
    assert interrupted["epoch"] == STOP_AT
    next_lrs = lrs[interrupted["global_step"] + 1]  # the lr the next step trains with
    for i, key in enumerate(("G", "D")):
        net = interrupted["networks"][key]
        assert net["scheduler"]["last_epoch"] == STOP_AT, key
        assert net["optimizer"]["param_groups"][0]["lr"] == next_lrs[i], key


@pytest.mark.parametrize(
    ("sched_name", "how"),
    [("sched_D", _raise), ("sched_G", _raise), ("sched_G", _signal)],
    ids=["between-G-and-D", "before-both-steps", "sigint-in-the-window"],
)
def test_fit_again_after_a_stop_in_the_lr_step_window_trains_with_the_right_lr(
    tmp_path, dataroot, reference, sched_name, how
):
    ref_lrs, ref_weights = reference
    trainer = _trainer(tmp_path, dataroot)
    lrs: dict[int, tuple[float, float]] = {}
    _record_lrs(trainer, lrs)
    _stop_once(trainer, sched_name, how)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    interrupted = load_checkpoint(trainer.experiment_dir / "checkpoints" / "interrupted.pt")
    _assert_consistent(interrupted, ref_lrs)
    trainer.fit()  # a notebook: the same trainer goes on
    trainer.close()
    assert lrs == ref_lrs
    weights = _weights(trainer)
    assert all(torch.equal(weights[k], ref_weights[k]) for k in ref_weights)


def test_resume_from_a_stop_between_g_and_d_steps_trains_with_the_right_lr(
    tmp_path, dataroot, reference
):
    ref_lrs, ref_weights = reference
    first = _trainer(tmp_path, dataroot)
    lrs: dict[int, tuple[float, float]] = {}
    _record_lrs(first, lrs)
    _stop_once(first, "sched_D", _raise)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    first.close()
    interrupted = load_checkpoint(first.experiment_dir / "checkpoints" / "interrupted.pt")
    _assert_consistent(interrupted, ref_lrs)
    resumed = _trainer(tmp_path, dataroot, enable=True, experiment_dir=str(first.experiment_dir))
    assert resumed.resume_path.name == "interrupted.pt"
    _record_lrs(resumed, lrs)
    resumed.fit()
    resumed.close()
    assert lrs == ref_lrs
    weights = _weights(resumed)
    assert all(torch.equal(weights[k], ref_weights[k]) for k in ref_weights)
