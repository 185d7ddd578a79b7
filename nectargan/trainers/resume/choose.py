"""Which checkpoint file an epoch spec names: a number of completed epochs, the latest, or best.

The reading of the spec itself is :mod:`nectargan.runs.epochs` (torch-free, for the Toolbox).
One implementation for every reader: ``nectargan train --resume`` (``--resume-epoch``,
``train.resume.epoch``), auto-resume, ``test``, ``infer`` and ``export`` (``--epoch``) and
the upstream API all call :func:`find_checkpoint`, so a new spec is one branch here and
every command gets the same files and the same messages.
"""

from __future__ import annotations

from pathlib import Path

from nectargan.runs.epochs import BEST, LATEST, parse_epoch
from nectargan.trainers import checkpoint as ckpt

__all__ = ["BEST", "LATEST", "find_checkpoint", "parse_epoch"]


def find_checkpoint(experiment_dir: str | Path, epoch: int | str = LATEST) -> Path:
    """The checkpoint after ``epoch`` completed epochs, the most recent one for ``'latest'``
    (or -1), or ``best.pt`` (best validation L1) for ``'best'``."""
    spec = parse_epoch(epoch)
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        problem = "is not a directory" if experiment_dir.exists() else "does not exist"
        raise ckpt.CheckpointError(f"experiment directory {str(experiment_dir)!r} {problem}")
    folder = ckpt.checkpoint_dir(experiment_dir)
    if spec == BEST:  # written by live validation
        best = folder / ckpt.BEST
        if not best.is_file():
            raise ckpt.CheckpointError(
                f"no {ckpt.BEST} in {str(folder)!r}: it is written when a "
                "validation improves the val L1 (visualizer.visdom.val_every > 0 and a val/ or "
                "test/ split); pass an epoch number or -1 (latest) instead"
            )
        return best
    if spec == LATEST:
        latest = _latest(experiment_dir)
        if latest is None:
            raise ckpt.CheckpointError(
                f"no checkpoint in {str(folder)!r}; "
                "expected epoch_NNNN.pt, interrupted.pt or mid_epoch.pt from a training run"
            )
        return latest
    epochs = ckpt.list_epoch_checkpoints(experiment_dir)
    if spec not in epochs:
        raise ckpt.CheckpointError(_missing_epoch_message(experiment_dir, int(spec), epochs))
    return epochs[spec]


def _latest(experiment_dir: Path) -> Path | None:
    """Follow latest.json; without it (e.g. a hand-copied dir), take the newest file."""
    named = ckpt.latest_named(experiment_dir)
    if named is not None:
        return named
    folder = ckpt.checkpoint_dir(experiment_dir)
    candidates = list(ckpt.list_epoch_checkpoints(experiment_dir).values())
    candidates += [folder / n for n in (ckpt.INTERRUPTED, ckpt.MID_EPOCH) if (folder / n).is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime_ns, default=None)


def _missing_epoch_message(experiment_dir: Path, epoch: int, epochs: dict[int, Path]) -> str:
    """Why epoch ``epoch`` has no file: never saved, or deleted on purpose (save.keep_last)."""
    available = ", ".join(str(e) for e in epochs) or "none"
    if (ckpt.checkpoint_dir(experiment_dir) / ckpt.BEST).is_file():
        available += "; 'best' is best.pt"
    pruned = ckpt.read_pruned(experiment_dir)
    if epoch not in pruned.get("epochs", ()):
        return (
            f"no checkpoint for epoch {epoch} in {str(experiment_dir)!r} "
            f"(epochs with checkpoints: {available}; -1 means the latest)"
        )
    keep_last, keep_every = pruned.get("keep_last", "N"), pruned.get("keep_every", 0)
    rule = f"only the newest {keep_last} epoch checkpoints are kept"
    if keep_every:
        rule += f", and epochs that are multiples of save.keep_every {keep_every}"
    return (
        f"the checkpoint of epoch {epoch} in {str(experiment_dir)!r} was deleted by "
        f"save.keep_last {keep_last} ({rule}); epochs with checkpoints: {available}; "
        "-1 means the latest"
    )
