"""Loss-weight and learning-rate scheduling over epochs.

Loaded on first use: the config schema imports :mod:`nectargan.scheduling.schedule`
(torch-free) for its rules, and must not pull torch in through ``lr_scheduler``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nectargan.utils.lazy import lazy_names

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

__getattr__ = lazy_names(__name__, _WHERE)
