"""Where one training run stands, in one object: counters, resume position, timed saves.

Why one object: checkpoint names, the LR schedules, the loss log, a resume
and the time-based checkpoint all read these values, and a resume restores
them together; spread over a dozen trainer fields they were easy to leave
half-restored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from nectargan.trainers.progress import Progress


@dataclass
class RunState:
    """``progress``: epoch and step counters (moved only by its methods).
    ``resume_header``: the counters of the checkpoint a resume continues from;
    ``resume_position``: its place inside an epoch (taken once, by that epoch);
    ``started``: the once-per-run start has happened (a resume writes its files then);
    ``epoch_skipped``: batches of this epoch an earlier session trained;
    ``epoch_order``: the shuffle state this epoch was drawn from;
    ``save_interval`` / ``timed_save_at``: the time-based checkpoint's period and next due
    time (``time.monotonic()``; infinite when off)."""

    progress: Progress = field(default_factory=Progress)
    resume_header: dict[str, Any] | None = None
    resume_position: dict[str, Any] | None = None
    started: bool = False
    epoch_skipped: int = 0
    epoch_order: torch.Tensor | None = None
    save_interval: float = math.inf
    timed_save_at: float = math.inf

    def arm_timed_save(self) -> None:
        """The next time-based checkpoint is due one interval from now."""
        self.timed_save_at = time.monotonic() + self.save_interval

    def take_resume_skip(self, epoch: int) -> int:
        """Batches of ``epoch`` a mid-epoch checkpoint already trained (once; else 0)."""
        position, self.resume_position = self.resume_position, None
        if position is None or epoch != int(position["epoch"]):
            return 0
        return int(position["batches_done"])
