"""Loss-weight and learning-rate scheduling over epochs.

Loaded on first use: the config schema imports :mod:`nectargan.scheduling.schedule`
(torch-free) for its rules, and must not pull torch in through ``lr_scheduler``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "KINDS": "schedule",
    "Schedule": "schedule",
    "LRScheduler": "lr_scheduler",
    "make_pix2pix_lr_scheduler": "lr_scheduler",
}
__all__ = ["KINDS", "LRScheduler", "Schedule", "make_pix2pix_lr_scheduler"]

if TYPE_CHECKING:
    from nectargan.scheduling.lr_scheduler import LRScheduler, make_pix2pix_lr_scheduler
    from nectargan.scheduling.schedule import KINDS, Schedule


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
