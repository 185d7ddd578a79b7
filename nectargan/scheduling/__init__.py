"""Loss-weight and learning-rate scheduling over epochs."""

from nectargan.scheduling.lr_scheduler import LRScheduler, make_pix2pix_lr_scheduler
from nectargan.scheduling.schedule import KINDS, Schedule

__all__ = ["KINDS", "LRScheduler", "Schedule", "make_pix2pix_lr_scheduler"]
