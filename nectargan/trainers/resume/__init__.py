"""Resuming a run, in one place: what to continue and with which config (:mod:`.plan`),
whether a requeued job continues an earlier run (:mod:`.auto`), how the trainer
continues it exactly (:mod:`.apply`) and how its records are cut back to the
checkpoint (:mod:`.history`). Used by the trainer, ``nectargan train`` and
inference alike."""

from nectargan.trainers.resume.auto import AlreadyComplete, Decision, decide, describe
from nectargan.trainers.resume.history import rewind_loss_log, rewind_timing
from nectargan.trainers.resume.plan import (
    ARCHITECTURE,
    RESUMABLE,
    ResumePlan,
    check_architecture,
    check_epochs,
    is_resumable,
    plan_resume,
    read_header,
)

__all__ = [
    "ARCHITECTURE",
    "RESUMABLE",
    "AlreadyComplete",
    "Decision",
    "ResumePlan",
    "check_architecture",
    "check_epochs",
    "decide",
    "describe",
    "is_resumable",
    "plan_resume",
    "read_header",
    "rewind_loss_log",
    "rewind_timing",
]
