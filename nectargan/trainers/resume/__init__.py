"""Resuming a run, in one place: which checkpoint file an epoch spec names (:mod:`.choose`),
what to continue and with which config (:mod:`.plan`), whether a requeued job continues
an earlier run (:mod:`.auto`), how the trainer continues it exactly (:mod:`.apply`) and
how its records are cut back to the checkpoint (:mod:`.history`). Used by the trainer,
``nectargan train``, ``test``, ``infer``, ``export`` and inference alike."""

from nectargan.trainers.resume.auto import AlreadyComplete, Decision, decide, describe
from nectargan.trainers.resume.choose import BEST, LATEST, find_checkpoint, parse_epoch
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
    "BEST",
    "LATEST",
    "RESUMABLE",
    "AlreadyComplete",
    "Decision",
    "ResumePlan",
    "check_architecture",
    "check_epochs",
    "decide",
    "describe",
    "find_checkpoint",
    "is_resumable",
    "parse_epoch",
    "plan_resume",
    "read_header",
    "rewind_loss_log",
    "rewind_timing",
]
