"""What the LossManager registers (a loss with its weight, schedule and tags) and records.

Kept apart from the manager so a loss spec (losses.py, pix2pix_objective.py) can
build ``RegisteredLoss`` values without the manager's recording machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from torch import Tensor

from nectargan.scheduling.schedule import Schedule
from nectargan.utils.numbers import is_number

LossFunction = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class RegisteredLoss:
    """What a spec returns per loss name: the function, its weight, schedule and tags.

    ``weight`` is used when there is no ``schedule``; with one, the weight at
    each epoch is ``schedule(epoch)``. Frozen, and each instance owns its
    values, so no two losses can end up sharing one weight.
    """

    function: LossFunction
    weight: float = 1.0
    schedule: Callable[[float], float] | None = None
    tags: tuple[str, ...] = ()

    @property
    def loss_weight(self) -> float:
        """Upstream's name for ``weight``."""
        return self.weight


class Record(NamedTuple):
    """One computed value, as kept in the history."""

    epoch: float
    step: int
    raw: float
    weight: float

    @property
    def weighted(self) -> float:
        return self.raw * self.weight


def validated_loss(name: str, loss: object) -> RegisteredLoss:
    if not isinstance(loss, RegisteredLoss):
        raise TypeError(f"loss {name!r} must be a RegisteredLoss, got {loss!r}")
    if not callable(loss.function):
        raise TypeError(f"loss {name!r}: function must be callable f(x, y), got {loss.function!r}")
    w = loss.weight
    if not is_number(w, finite=True):
        raise ValueError(f"loss {name!r}: weight must be a finite number, got {w!r}")
    if loss.schedule is not None and not callable(loss.schedule):
        raise TypeError(
            f"loss {name!r}: schedule must be a Schedule or callable(epoch), got {loss.schedule!r}"
        )
    if not all(isinstance(t, str) and t for t in loss.tags):
        raise ValueError(f"loss {name!r}: tags must be non-empty strings, got {loss.tags!r}")
    return loss


def describe_loss(loss: RegisteredLoss) -> dict[str, Any]:
    """JSON-friendly static description of a loss, for the log index."""
    schedule = loss.schedule
    if isinstance(schedule, Schedule):
        described: Any = schedule.to_dict()
    elif schedule is not None:
        described = getattr(schedule, "__name__", type(schedule).__name__)
    else:
        described = None
    return {"tags": list(loss.tags), "weight": float(loss.weight), "schedule": described}
