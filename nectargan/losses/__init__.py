"""Loss functions, the Pix2pix objective spec and the LossManager that runs them.

Names are imported on first use, so ``nectargan.losses.loss_log`` (the loss
log's reader and writer) can be used without loading torch, e.g. by a replay.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "read_loss_log": "nectargan.losses.loss_log",
    "LossManager": "nectargan.losses.loss_manager",
    "Record": "nectargan.losses.loss_manager",
    "RegisteredLoss": "nectargan.losses.loss_manager",
    "SUBSPECS": "nectargan.losses.pix2pix_objective",
    "pix2pix": "nectargan.losses.pix2pix_objective",
}

__all__ = ["SUBSPECS", "LossManager", "Record", "RegisteredLoss", "pix2pix", "read_loss_log"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nectargan.losses' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
