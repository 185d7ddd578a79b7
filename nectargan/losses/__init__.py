"""Loss functions, the Pix2pix objective spec and the LossManager that runs them.

Names are imported on first use, so ``nectargan.losses.loss_log`` (the loss
log's reader and writer) can be used without loading torch, e.g. by a replay.
"""

from __future__ import annotations

from nectargan.utils.lazy import lazy_names

_WHERE = {
    "read_loss_log": "loss_log",
    "LossManager": "loss_manager",
    "Record": "registered",
    "RegisteredLoss": "registered",
    "SUBSPECS": "pix2pix_objective",
    "pix2pix": "pix2pix_objective",
}

__all__ = ["SUBSPECS", "LossManager", "Record", "RegisteredLoss", "pix2pix", "read_loss_log"]

__getattr__ = lazy_names(__name__, _WHERE)
