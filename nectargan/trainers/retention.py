"""Checkpoint retention (``save.keep_last``, ``save.keep_every``).

One checkpoint of the default model is about 690 MB, and by default one is
written every epoch: a 200-epoch run would keep 138 GB. After each epoch
checkpoint is safely on disk (written, fsynced, renamed), the epoch
checkpoints older than the newest ``keep_last`` are deleted, except every
``keep_every``-th epoch and the file ``latest.json`` names; the newest is
never deleted, so a resume always has its checkpoint. ``best.pt`` is a hard
link or a copy, so it keeps its data when its epoch's file goes.

Epochs after the one just saved (left behind by a resume from an earlier
epoch) belong to an abandoned run: they are not counted and not deleted
(the run overwrites them as it gets there). The deleted epochs are recorded
in ``checkpoints/pruned.json`` before the files go, so asking for one later
(``--resume-epoch N``, ``test --epoch N``) says why it is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from nectargan import experiment_layout as layout
from nectargan.trainers import checkpoint as ckpt
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.diskfull import describe_error


def epochs_to_delete(
    epochs: Iterable[int], newest: int, keep_last: int, keep_every: int, protected: Iterable[int]
) -> list[int]:
    """The epochs of ``epochs`` (up to ``newest``) the retention rules let go, oldest first."""
    if keep_last <= 0:
        return []
    considered = sorted(e for e in epochs if e <= newest)
    kept = set(considered[-keep_last:]) | set(protected)  # never empty: the newest stays
    if keep_every > 0:
        kept |= {e for e in considered if e % keep_every == 0}
    return [e for e in considered if e not in kept]


def latest_epoch(experiment_dir: Path) -> int | None:
    """The epoch whose file ``latest.json`` names (None: another file, or unreadable)."""
    named = ckpt.latest_named(experiment_dir)
    match = layout.CHECKPOINT_RE.match(named.name) if named is not None else None
    return int(match.group(1)) if match else None


def record_pruned(experiment_dir: Path, epochs: list[int], keep_last: int, keep_every: int) -> None:
    """Add ``epochs`` to ``pruned.json``, with the settings that deleted them."""
    earlier = ckpt.read_pruned(experiment_dir).get("epochs", [])
    known = {e for e in earlier if isinstance(e, int)} | set(epochs)
    record = {"epochs": sorted(known), "keep_last": keep_last, "keep_every": keep_every}
    atomic_write_text(ckpt.checkpoint_dir(experiment_dir) / ckpt.PRUNED, json.dumps(record) + "\n")


def prune(
    experiment_dir: Path, newest: int, keep_last: int, keep_every: int
) -> tuple[list[Path], list[str]]:
    """Delete what the rules let go; (deleted files, one warning per problem). Never raises
    for an OS error: a checkpoint that could not be deleted only costs disk space."""
    files = ckpt.list_epoch_checkpoints(experiment_dir)
    protected = [e for e in (latest_epoch(experiment_dir), newest) if e is not None]
    doomed = epochs_to_delete(files, newest, keep_last, keep_every, protected)
    if not doomed:
        return [], []
    problems = []
    try:
        record_pruned(experiment_dir, doomed, keep_last, keep_every)
    except OSError as exc:
        problems.append(f"could not write {ckpt.PRUNED}: {describe_error(exc)}")
    deleted = []
    for epoch in doomed:
        try:
            files[epoch].unlink(missing_ok=True)
            deleted.append(files[epoch])
        except OSError as exc:
            problems.append(f"could not delete {files[epoch]}: {describe_error(exc)}; it stays")
    return deleted, problems
