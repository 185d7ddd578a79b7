"""Loss functions, the Pix2pix objective spec and the LossManager that runs them."""

from nectargan.losses.loss_log import read_loss_log
from nectargan.losses.loss_manager import LossManager, Record, RegisteredLoss
from nectargan.losses.pix2pix_objective import SUBSPECS, pix2pix

__all__ = ["SUBSPECS", "LossManager", "Record", "RegisteredLoss", "pix2pix", "read_loss_log"]
