"""Checkpoint files: one ``.pt`` per save holding both networks, their optimizers,
LR schedulers and scalers, the epoch count and the config.

Layout inside an experiment directory::

    checkpoints/epoch_0003.pt     after 3 completed epochs
    checkpoints/interrupted.pt    written when training stops on Ctrl-C or an error
    checkpoints/mid_epoch.pt      every save.every_minutes inside an epoch (overwritten)
    checkpoints/latest.json       {"file": "epoch_0003.pt"}: the most recent save
    checkpoints/best.pt           the epoch with the best validation L1 (``--epoch best``)
    checkpoints/pruned.json       epochs whose files save.keep_last deleted (retention.py)

Files are written to a temporary name and renamed, so a Ctrl-C during a save
never leaves a truncated checkpoint behind. Loading uses ``weights_only=True``:
a checkpoint is data, never code. Which file an epoch spec (N, latest, best) names
is :func:`nectargan.trainers.resume.choose.find_checkpoint`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from nectargan import experiment_layout as layout
from nectargan.errors import CheckpointUserError
from nectargan.utils.atomic import atomic_write_text, atomic_writer
from nectargan.utils.json_files import read_json_object

FORMAT = "nectargan.checkpoint"
VERSION = 1
CHECKPOINT_DIR = layout.CHECKPOINT_DIR
INTERRUPTED = layout.INTERRUPTED
MID_EPOCH = layout.MID_EPOCH
LATEST = layout.LATEST
BEST = layout.BEST_CHECKPOINT
PRUNED = layout.PRUNED
_EPOCH_FILE = layout.CHECKPOINT_RE


class CheckpointError(CheckpointUserError):
    """A checkpoint is missing, unreadable or does not fit; the message says which and why."""


def checkpoint_dir(experiment_dir: str | Path) -> Path:
    return Path(experiment_dir) / CHECKPOINT_DIR


def epoch_path(experiment_dir: str | Path, epoch: int) -> Path:
    """Where the checkpoint after ``epoch`` completed epochs goes."""
    return checkpoint_dir(experiment_dir) / layout.checkpoint_name(epoch)


def save_checkpoint(path: Path, state: dict[str, Any], *, latest: bool = True) -> Path:
    """Atomically write ``state`` (plus format header) to ``path`` and point latest.json at it
    (unless ``latest=False``, as for ``best.pt``, which is not where a resume continues)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "saved": datetime.now(UTC).isoformat(timespec="seconds"),
        **state,
    }
    with atomic_writer(path) as handle:
        writer = _ErrorKeepingWriter(handle)
        try:
            torch.save(payload, writer)
        except RuntimeError as exc:  # torch hides the OSError (e.g. ENOSPC) behind its own
            if writer.error is not None:
                raise writer.error from exc
            raise
    if latest:
        _write_latest(path)
    return path


class _ErrorKeepingWriter:
    """A file wrapper that remembers the OS error torch's writer turns into a vague one."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._handle.flush()


def _write_latest(path: Path) -> None:
    atomic_write_text(path.parent / LATEST, json.dumps({"file": path.name}) + "\n")


def list_epoch_checkpoints(experiment_dir: str | Path) -> dict[int, Path]:
    """``{epochs completed: path}`` of the regular (end of epoch) checkpoints."""
    folder = checkpoint_dir(experiment_dir)
    if not folder.is_dir():
        return {}
    found = {}
    for child in folder.iterdir():
        match = _EPOCH_FILE.match(child.name)
        if match:
            found[int(match.group(1))] = child
    return dict(sorted(found.items()))


def read_pruned(experiment_dir: str | Path) -> dict[str, Any]:
    """``pruned.json`` (``{"epochs": [...], "keep_last": N, "keep_every": K}``), or {}.

    Only error messages read it, so a missing or torn file just means plainer messages.
    """
    record = read_json_object(checkpoint_dir(experiment_dir) / PRUNED) or {}
    return record if isinstance(record.get("epochs"), list) else {}


def latest_named(experiment_dir: Path) -> Path | None:
    """The checkpoint ``latest.json`` names, when that file exists; else None."""
    folder = checkpoint_dir(experiment_dir)
    name = (read_json_object(folder / LATEST) or {}).get("file")
    if isinstance(name, str) and "/" not in name and (folder / name).is_file():
        return folder / name
    return None


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, mmap: bool = False
) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    ``mmap``: map the file instead of reading it, for a quick look at the
    counters and config of a large checkpoint.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist") from exc
    except Exception as exc:  # truncated, empty, garbage, a foreign pickle...
        raise CheckpointError(broken_message(path, exc)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a NectarGAN checkpoint{_readable_hint(path)}")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {state.get('version')}, "
            f"newer than this NectarGAN understands ({VERSION}); upgrade nectargan"
        )
    return state


def _why_unreadable(path: Path, exc: BaseException) -> str:
    """What is wrong with the file, in words (never torch's advice to unpickle code)."""
    try:
        if path.stat().st_size == 0:
            return "the file is empty"
    except OSError:
        pass
    text = str(exc)
    if "weights_only" in text or "Unsupported global" in text:
        return "it holds Python objects, not only tensors and plain data (not ours?)"
    first = text.splitlines()[0][:160] if text else type(exc).__name__
    return f"it is truncated or not a checkpoint file ({first})"


def broken_message(path: Path, exc: BaseException) -> str:
    """Which file is broken, why, and the exact command that resumes from the newest good one."""
    return f"cannot read checkpoint {str(path)!r}: {_why_unreadable(path, exc)}" + _readable_hint(
        path
    )


def newest_readable(experiment_dir: Path, skip: Path | None = None) -> tuple[int, Path] | None:
    """The most recent end-of-epoch checkpoint that loads, other than ``skip``."""
    for epoch, candidate in sorted(list_epoch_checkpoints(experiment_dir).items(), reverse=True):
        if skip is not None and candidate.resolve() == skip.resolve():
            continue
        try:
            state = torch.load(candidate, map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            continue
        if isinstance(state, dict) and state.get("format") == FORMAT:
            return epoch, candidate
    return None


def _readable_hint(path: Path) -> str:
    if path.parent.name != CHECKPOINT_DIR:
        return ""
    experiment_dir = path.parent.parent
    found = newest_readable(experiment_dir, skip=path)
    if found is None:
        return f"; no other readable checkpoint in {str(path.parent)!r}"
    epoch, good = found
    return (
        f"; the newest readable checkpoint is {good.name} (epoch {epoch}): resume from it with "
        f"`nectargan train --resume {experiment_dir} --resume-epoch {epoch}`"
    )
