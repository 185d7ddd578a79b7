"""One monotonic history: a resume from an earlier point cuts the records back to it.

When the run restarts from an earlier point than where its records end
(``--resume-epoch N``, a crash after the last checkpoint, a mid-epoch
checkpoint older than the last flush), the loss log and ``timing.json`` are
cut back to that point, so every reader sees each step once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nectargan.losses.loss_log import FIELDS, atomic_write_json, write_columns
from nectargan.trainers.timing import read_timing, write_timing


def rewind_loss_log(
    loss_manager: Any, epochs_done: int, keep_steps: Mapping[str, int] | None = None
) -> int:
    """Drop loss records at or after epoch ``epochs_done`` (training the resume discards).

    ``keep_steps`` (a mid-epoch resume): instead keep, per loss, the records
    whose step is below that count, i.e. those made before the checkpoint.
    Rewrites only the segments that hold such records (and their column files),
    fixes the index counts, and lets the loss manager continue its step counts
    from the last kept record. Returns how many records were dropped.
    """
    log = getattr(loss_manager, "_log", None)
    if log is None:
        return 0
    dropped = 0
    last_step: dict[str, int] = {}
    counts: dict[str, int] = {}
    for seg_path in sorted(log.segment_dir.glob("[0-9]*.json")):
        segment = json.loads(seg_path.read_text(encoding="utf-8"))
        changed = False
        for name, cols in segment["losses"].items():
            if keep_steps is None:
                keep = [i for i, e in enumerate(cols["epoch"]) if e < epochs_done]
            else:
                limit = keep_steps.get(name, 0)
                keep = [i for i, s in enumerate(cols["step"]) if s < limit]
            if len(keep) != len(cols["epoch"]):
                changed = True
                dropped += len(cols["epoch"]) - len(keep)
                segment["losses"][name] = {f: [cols[f][i] for i in keep] for f in FIELDS}
            steps = segment["losses"][name]["step"]
            counts[name] = counts.get(name, 0) + len(steps)
            if steps:
                last_step[name] = max(last_step.get(name, -1), int(max(steps)))
        if changed:
            atomic_write_json(seg_path, segment)
            run = segment.get("run")
            write_columns(seg_path, run if isinstance(run, int) else 0, segment["losses"])
    if not dropped:
        return 0
    for name, entry in log.index["losses"].items():
        entry["last_step"] = last_step.get(name, -1)
        entry["records"] = counts.get(name, 0)
    rewind: dict[str, Any] = {"epoch": epochs_done, "dropped": dropped}
    if keep_steps is not None:
        rewind["steps"] = dict(keep_steps)
    log.index.setdefault("rewinds", []).append(rewind)
    log.write_index()
    steps = getattr(loss_manager, "_steps", None)
    if isinstance(steps, dict):
        for name in steps:
            steps[name] = last_step.get(name, -1) + 1
    return dropped


def rewind_timing(experiment_dir: Path, epochs_done: int) -> int:
    """Drop ``timing.json`` entries of epochs after ``epochs_done``; returns how many."""
    epochs = read_timing(experiment_dir)
    kept = [e for e in epochs if isinstance(e.get("epoch"), int) and e["epoch"] <= epochs_done]
    if len(kept) == len(epochs):
        return 0
    write_timing(experiment_dir, kept)
    return len(epochs) - len(kept)
