"""Per-epoch run records: ``val_metrics.json``, ``epoch_stats.json`` and ``run_info.json``.

Written by the trainer (nectargan/trainers/run_monitor.py), read back by the
trainer on resume and by ``nectargan replay`` / ``report``, so this module is
torch-free. ``val_metrics.json`` and ``epoch_stats.json`` hold one small row
per epoch, one row a line, and grow by an in-place append of the new row
(nectargan/utils/rows_json.py), so an epoch's write costs the same at epoch
10 and at epoch 10,000; they are rewritten whole (atomically) only when a run
starts or resumes. ``run_info.json`` is small and rewritten whole. Rows are
keyed by the number of epochs completed (1-based); a resume from an earlier
checkpoint drops the rows after it (:func:`rows_up_to`), so an epoch never
appears twice.

``val_metrics.json`` (one row a line)::

    {"format":"nectargan-val-metrics","version":1,"split":"val","rows":[
    {"epoch":1,"l1":..,"psnr":..,"ssim":..,"images":64,"seconds":1.9,"precision":"bf16"},
    ...
    ],"best":{"epoch":1,"l1":..} | null}

``epoch_stats.json``: rows ``{"epoch", "lr_G", "lr_D", "images", "seconds",
"images_per_s"}`` (the learning rates used during that epoch; seconds of
training, validation not included). ``run_info.json``: what the ``run_info``
pane shows, as data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.utils import rows_json
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.json_files import read_json_object
from nectargan.utils.numbers import is_int, is_number

VAL_METRICS_FILE = layout.VAL_METRICS_FILE
EPOCH_STATS_FILE = layout.EPOCH_STATS_FILE
RUN_INFO_FILE = layout.RUN_INFO_FILE
BEST_CHECKPOINT = layout.BEST_CHECKPOINT
VAL_FORMAT = "nectargan-val-metrics"
STATS_FORMAT = "nectargan-epoch-stats"
VERSION = 1
METRICS = ("l1", "psnr", "ssim")


def _read(path: Path) -> dict[str, Any]:
    """The file's dict; of a torn append (a crash mid-write), the rows that still parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {}
    return rows_json.load_rows(text, "rows")


def _good_row(row: Any) -> bool:
    epoch = row.get("epoch") if isinstance(row, dict) else None
    return is_int(epoch) and epoch >= 1


def read_rows(experiment_dir: str | Path, name: str) -> list[dict[str, Any]]:
    """The file's rows, one per epoch (the last one wins), sorted; [] if missing or unreadable."""
    rows = _read(Path(experiment_dir) / name).get("rows")
    if not isinstance(rows, list):
        return []
    by_epoch = {r["epoch"]: r for r in rows if _good_row(r)}
    return [by_epoch[e] for e in sorted(by_epoch)]


def read_val_metrics(experiment_dir: str | Path) -> list[dict[str, Any]]:
    return read_rows(experiment_dir, VAL_METRICS_FILE)


def read_epoch_stats(experiment_dir: str | Path) -> list[dict[str, Any]]:
    return read_rows(experiment_dir, EPOCH_STATS_FILE)


def read_run_info(experiment_dir: str | Path) -> dict[str, Any]:
    return read_json_object(Path(experiment_dir) / RUN_INFO_FILE) or {}


def rows_up_to(rows: Sequence[Mapping[str, Any]], epochs_completed: int) -> list[dict[str, Any]]:
    """Rows of epochs a resume after ``epochs_completed`` keeps (the later ones are redone)."""
    return [dict(r) for r in rows if r["epoch"] <= epochs_completed]


def best_row(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The row with the lowest finite val L1 (the earliest on a tie), or None."""
    finite = [r for r in rows if _finite(r.get("l1"))]
    return dict(min(finite, key=lambda r: (r["l1"], r["epoch"]))) if finite else None


def _finite(value: Any) -> bool:
    return is_number(value, finite=True)


def _clean(value: Any) -> Any:
    """NaN/Inf are not JSON: a diverged metric is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _clean(v) for k, v in row.items()}


def _val_parts(split: str | None) -> dict[str, Any]:
    return {"format": VAL_FORMAT, "version": VERSION, "split": split}


def write_val_metrics(
    experiment_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    split: str | None,
    best: Mapping[str, Any] | None,
) -> Path:
    """Rewrite ``val_metrics.json`` whole (atomic): a run's start, a resume."""
    return rows_json.write_rows(
        Path(experiment_dir) / VAL_METRICS_FILE,
        _val_parts(split),
        "rows",
        [_clean_row(r) for r in rows],
        {"best": dict(best) if best else None},
    )


def append_val_metrics(
    experiment_dir: str | Path,
    row: Mapping[str, Any],
    split: str | None,
    best: Mapping[str, Any] | None,
) -> Path:
    """Add one epoch's row (and the current best) at a cost independent of the file's length.

    A file in another layout (an older version's) is rewritten whole once.
    """
    path = Path(experiment_dir) / VAL_METRICS_FILE
    tail = {"best": dict(best) if best else None}
    if not rows_json.append_row(path, _clean_row(row), tail):
        rows = [r for r in read_val_metrics(experiment_dir) if r["epoch"] != row["epoch"]]
        write_val_metrics(experiment_dir, [*rows, row], split, best)
    return path


def write_epoch_stats(experiment_dir: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rewrite ``epoch_stats.json`` whole (atomic): a run's start, a resume."""
    head = {"format": STATS_FORMAT, "version": VERSION}
    path = Path(experiment_dir) / EPOCH_STATS_FILE
    return rows_json.write_rows(path, head, "rows", [_clean_row(r) for r in rows])


def append_epoch_stats(experiment_dir: str | Path, row: Mapping[str, Any]) -> Path:
    """Add one epoch's row in place (an older layout is rewritten whole once)."""
    path = Path(experiment_dir) / EPOCH_STATS_FILE
    if not rows_json.append_row(path, _clean_row(row)):
        rows = [r for r in read_epoch_stats(experiment_dir) if r["epoch"] != row["epoch"]]
        write_epoch_stats(experiment_dir, [*rows, row])
    return path


def write_run_info(experiment_dir: str | Path, info: Mapping[str, Any]) -> Path:
    text = json.dumps({k: _clean(v) for k, v in info.items()}, indent=1, default=str)
    return atomic_write_text(Path(experiment_dir) / RUN_INFO_FILE, text + "\n")


def read_val_best(experiment_dir: str | Path) -> dict[str, Any] | None:
    """The ``best`` entry of ``val_metrics.json`` (which epoch ``best.pt`` holds), or None."""
    best = _read(Path(experiment_dir) / VAL_METRICS_FILE).get("best")
    return best if isinstance(best, dict) and _good_row(best) else None


def val_split(experiment_dir: str | Path) -> str | None:
    split = _read(Path(experiment_dir) / VAL_METRICS_FILE).get("split")
    return split if isinstance(split, str) else None


def run_seconds(epoch_times: Sequence[Mapping[str, Any]]) -> float | None:
    """How long a run took: the one definition the console, ``report`` and ``replay`` print.

    The sum of the wall seconds the trainer measured for each epoch it completed
    (``timing.json``: the epoch's batches and its end-of-epoch saves; validation,
    start-up and time spent stopped between sessions not included), over every
    session of the run. None when nothing was measured.
    """
    seconds = [
        float(e["seconds"])
        for e in epoch_times
        if isinstance(e.get("seconds"), int | float) and not isinstance(e.get("seconds"), bool)
    ]
    return sum(seconds) if seconds else None
