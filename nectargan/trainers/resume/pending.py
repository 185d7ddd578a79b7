"""An epoch whose training finished but whose report was never written: a resume writes it.

Why: after an epoch's last batch the run writes its checkpoint and examples,
then validates and appends the epoch's rows (``epoch_stats.json``,
``val_metrics.json``). A stop in between (SIGTERM or Ctrl-C during the
validation, ``kill -9``, a lost node) leaves a checkpoint of that epoch's end,
so a resume continues *after* the epoch and its rows would be missing for good:
a hole in the validation history, and a ``best.pt`` chosen without that epoch.

Every epoch-boundary checkpoint therefore carries a note (:data:`REPORT_NOTE`)
with what that epoch's report needs and the checkpoint cannot tell later (the
learning rates it trained with, its images, whether it is validated). The
files say whether the report was written; when it was not,
:func:`pending_report` returns the note, the resume writes the report first,
on the checkpoint's weights (those of the epoch's end, exactly), and a run
whose last epoch lacks its report is not complete yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nectargan.runs import records as rm

REPORT_NOTE = "epoch_report"  # the checkpoint key: {"epoch", "lrs", "images", "validate"}


def pending_report(experiment_dir: Path, header: Mapping[str, Any]) -> dict[str, Any] | None:
    """The note of the checkpoint's epoch when its rows are not on disk, else None.

    Only an epoch-boundary checkpoint with a note qualifies (a mid-epoch one
    retrains the rest of its epoch, whose end then reports as usual; one
    written by an older NectarGAN has no note and is taken as reported).
    """
    note = header.get(REPORT_NOTE)
    epoch = header.get("epoch")
    if not isinstance(note, Mapping) or header.get("position") or not isinstance(epoch, int):
        return None
    if epoch < 1 or note.get("epoch") != epoch:
        return None
    stats = {row["epoch"] for row in rm.read_epoch_stats(experiment_dir)}
    validated = {row["epoch"] for row in rm.read_val_metrics(experiment_dir)}
    if epoch in stats and (epoch in validated or not note.get("validate")):
        return None
    return dict(note)


def experiment_of(checkpoint: Path) -> Path:
    """The experiment directory of a checkpoint file (``DIR/checkpoints/NAME.pt``)."""
    return Path(checkpoint).parent.parent
