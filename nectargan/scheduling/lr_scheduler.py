"""Per-epoch learning rates for torch optimizers, driven by ``Schedule``-like callables.

Epoch counting follows torch's schedulers: ``last_epoch`` is the number of
epochs *completed*. The lr used while training epoch ``n + 1`` is
``schedule(n)``; call ``step()`` once at the end of every epoch. Resuming after
``N`` finished epochs is ``last_epoch=N`` (or ``load_state_dict``), which sets
``schedule(N)`` straight away, so the schedule continues instead of restarting.

Each param group's starting lr is remembered as ``initial_lr`` (as torch does),
so a decayed lr restored from an optimizer checkpoint is not mistaken for the
base lr of a new schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from nectargan.scheduling.schedule import Schedule
from nectargan.utils.numbers import is_int, is_number

LRFunction = Callable[[float], float]


class LRScheduler:
    """Set every param group's lr to ``schedule(epochs_completed)``."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedules: LRFunction | Sequence[LRFunction],
        last_epoch: int = 0,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"LRScheduler needs a torch.optim.Optimizer, got {optimizer!r}")
        self.optimizer = optimizer
        self.schedules = _per_group(schedules, len(optimizer.param_groups))
        self.last_epoch = _check_epoch(last_epoch)
        self._apply()

    def step(self) -> None:
        """Mark one more epoch completed and set the lr for the next one."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The lr of each param group, as last set."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def lr_at(self, epochs_completed: int) -> list[float]:
        """The lrs this scheduler would set after ``epochs_completed`` epochs."""
        return [_check_lr(s(epochs_completed), epochs_completed) for s in self.schedules]

    def state_dict(self) -> dict[str, Any]:
        """Only the position: the schedule itself comes from the (possibly edited) config."""
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at the saved position and apply its lr immediately."""
        if not isinstance(state, dict) or "last_epoch" not in state:
            raise ValueError(f"LRScheduler state must be a dict with 'last_epoch', got {state!r}")
        self.last_epoch = _check_epoch(state["last_epoch"])
        self._apply()

    def _apply(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.lr_at(self.last_epoch), strict=True):
            group["lr"] = lr


def make_pix2pix_lr_scheduler(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    epochs_decay: int,
    target: float = 0.0,
    last_epoch: int = 0,
) -> LRScheduler:
    """Pix2pix default: base lr for ``epochs`` epochs, then linear decay over ``epochs_decay``.

    With ``target=0`` this matches the reference pix2pix rule
    ``lr = base * (1 - max(0, n + 1 - epochs) / (epochs_decay + 1))`` for
    ``n`` completed epochs: every one of the ``epochs + epochs_decay`` epochs
    trains with a non-zero lr, and ``target`` is reached just after the last.
    """
    epochs, epochs_decay = (
        _check_count("epochs", epochs),
        _check_count("epochs_decay", epochs_decay),
    )
    target = _check_lr(target, "target")
    schedules = [
        Schedule(
            start_epoch=epochs - 1,
            end_epoch=epochs + epochs_decay,
            initial_value=_base_lr(group),
            target_value=target,
            kind="linear",
        )
        for group in optimizer.param_groups
    ]
    return LRScheduler(optimizer, schedules, last_epoch=last_epoch)


def _base_lr(group: dict[str, Any]) -> float:
    """The group's original lr, recorded on first use like torch's schedulers do."""
    group.setdefault("initial_lr", group["lr"])
    return float(group["initial_lr"])


def _per_group(schedules: LRFunction | Sequence[LRFunction], n_groups: int) -> list[LRFunction]:
    if callable(schedules):
        return [schedules] * n_groups
    schedules = list(schedules)
    if len(schedules) != n_groups or not all(callable(s) for s in schedules):
        raise ValueError(
            f"LRScheduler needs one callable schedule, or one per param group ({n_groups}); "
            f"got {schedules!r}"
        )
    return schedules


def _check_epoch(value: object) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"last_epoch must be an int >= 0 (epochs completed), got {value!r}")
    return value


def _check_count(name: str, value: object) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _check_lr(value: object, where: object) -> float:
    if not is_number(value, finite=True):
        raise ValueError(f"learning rate at {where!r} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"learning rate at {where!r} must be >= 0, got {value!r}")
    return float(value)
