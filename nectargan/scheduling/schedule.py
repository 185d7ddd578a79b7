"""A value that moves from one number to another over a window of epochs.

Loss weights and learning rates both need "hold, then ramp, then hold": a
``Schedule`` is that one shape, evaluated at any (possibly fractional) epoch.

* Before ``start_epoch`` the value is ``initial_value``; from ``end_epoch`` on
  it is ``target_value`` (exactly, not up to rounding).
* Inside the window, progress ``t = (epoch - start) / (end - start)`` in
  ``[0, 1]`` is mapped by the ``kind``:

  - ``'linear'``: ``initial + (target - initial) * t``.
  - ``'exponential'``: geometric interpolation ``initial * (target / initial) ** t``
    (a constant *ratio* per epoch, what "decay the lr by x% per epoch" means).
    Needs both ends non-zero and of the same sign.
  - a callable ``f(t) -> fraction`` (an easing curve): the value is
    ``initial + (target - initial) * f(t)``. ``f(0)`` should be 0 and ``f(1)`` 1;
    the ends of the window are pinned regardless.

The result is clamped between the two ends, which keeps built-in kinds
monotone under floating-point rounding: the direction follows the data,
so ``1e-4 -> 2e-4`` goes up and ``2e-4 -> 0`` goes down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from nectargan.utils.numbers import is_number

Easing = Callable[[float], float]

ScheduleKind = Literal["linear", "exponential"]
KINDS: tuple[str, ...] = get_args(ScheduleKind)  # also the config's train.loss.schedules kinds


def _check_number(name: str, value: object) -> float:
    """A finite real number, or a ValueError naming ``name`` and what it got."""
    if not is_number(value):
        raise TypeError(f"Schedule {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"Schedule {name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Schedule:
    """``initial_value`` until ``start_epoch``, ``target_value`` from ``end_epoch``."""

    start_epoch: float
    end_epoch: float
    initial_value: float
    target_value: float
    kind: str | Easing = "linear"

    def __post_init__(self) -> None:
        start = _check_number("start_epoch", self.start_epoch)
        end = _check_number("end_epoch", self.end_epoch)
        if end < start:
            raise ValueError(
                f"Schedule end_epoch ({self.end_epoch!r}) must be >= start_epoch ({self.start_epoch!r})"
            )
        a = _check_number("initial_value", self.initial_value)
        b = _check_number("target_value", self.target_value)
        if callable(self.kind):
            return
        if self.kind not in KINDS:
            raise ValueError(
                f"Schedule kind must be one of {list(KINDS)} or a callable f(t) -> fraction, "
                f"got {self.kind!r}"
            )
        if self.kind == "exponential" and (a == 0 or b == 0 or (a > 0) != (b > 0)):
            raise ValueError(
                "Schedule kind 'exponential' needs initial_value and target_value non-zero and "
                f"of the same sign, got {a!r} -> {b!r}; use 'linear' (e.g. to decay to 0)"
            )

    def progress(self, epoch: float) -> float:
        """Where ``epoch`` lies in the window, clamped to ``[0, 1]``."""
        if epoch >= self.end_epoch:  # first: a zero-width window is a step at end_epoch
            return 1.0
        if epoch <= self.start_epoch:
            return 0.0
        return (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)

    def __call__(self, epoch: float) -> float:
        epoch = _check_number("epoch", epoch)
        t = self.progress(epoch)
        if t <= 0.0:
            return float(self.initial_value)
        if t >= 1.0:
            return float(self.target_value)
        return self._clamp(self._interpolate(t))

    def _interpolate(self, t: float) -> float:
        a, b = float(self.initial_value), float(self.target_value)
        if self.kind == "linear":
            return a + (b - a) * t
        if self.kind == "exponential":
            sign = 1.0 if a > 0 else -1.0
            log_a, log_b = math.log(abs(a)), math.log(abs(b))
            return sign * math.exp(log_a + (log_b - log_a) * t)
        return a + (b - a) * self._ease(t)

    def _ease(self, t: float) -> float:
        """Call the user's easing curve, refusing anything but a finite number."""
        fraction = self.kind(t)  # type: ignore[operator]
        if not is_number(fraction):
            raise TypeError(f"Schedule kind {self.kind!r} must return a number, got {fraction!r}")
        if not math.isfinite(fraction):
            raise ValueError(f"Schedule kind {self.kind!r} returned {fraction!r} at t={t!r}")
        return float(fraction)

    def _clamp(self, value: float) -> float:
        """Keep built-in kinds inside the ends; user curves may overshoot on purpose."""
        if callable(self.kind):
            return value
        lo, hi = sorted((float(self.initial_value), float(self.target_value)))
        return min(max(value, lo), hi)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (callable kinds are named, not serialised)."""
        kind = self.kind if isinstance(self.kind, str) else getattr(self.kind, "__name__", "custom")
        return {
            "start_epoch": self.start_epoch,
            "end_epoch": self.end_epoch,
            "initial_value": self.initial_value,
            "target_value": self.target_value,
            "kind": kind,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Schedule:
        """Build from a config mapping with exactly the constructor's keys."""
        if not isinstance(data, dict):
            raise TypeError(f"Schedule config must be a mapping, got {data!r}")
        required = {"start_epoch", "end_epoch", "initial_value", "target_value"}
        allowed = required | {"kind"}
        missing, unknown = required - data.keys(), data.keys() - allowed
        if missing or unknown:
            raise ValueError(
                f"Schedule config {data!r}: missing keys {sorted(missing)}, unknown keys "
                f"{sorted(unknown)}; expected {sorted(allowed)}"
            )
        return cls(**data)
