"""Trainers: the generic epoch loop (:class:`Trainer`) and pix2pix (:class:`Pix2pixTrainer`)."""

from nectargan.trainers.checkpoint import CheckpointError, load_checkpoint
from nectargan.trainers.pix2pix_trainer import Pix2pixTrainer
from nectargan.trainers.resume.choose import find_checkpoint
from nectargan.trainers.trainer import Trainer

__all__ = ["CheckpointError", "Pix2pixTrainer", "Trainer", "find_checkpoint", "load_checkpoint"]
