"""On-disk loss log: an index file plus append-only JSON segments.

Layout inside the experiment directory::

    loss_log.json             index: format, per-loss metadata, runs, segment count
    loss_log/000001.json      one segment per flush: the records since the last flush
    loss_log/000002.json      ...

A segment holds, per loss, parallel lists ``epoch``, ``step``, ``raw`` (the
unweighted loss) and ``weight`` (the weight actually applied at that step,
i.e. the scheduled value); the weighted value is ``raw * weight``.
Non-finite values are written as ``null`` so the files stay strict JSON.

Why segments: a flush writes only the new records plus the small index, so
its cost does not grow with the length of training. Every file is written to
a temporary file and renamed into place, so a crash or Ctrl-C never leaves a
half-written file. A new run in the same directory (a resume) adds a run
entry and continues the segment numbering; existing files are never rewritten
except the index. ``read_loss_log`` merges everything back into one dict.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nectargan.utils.atomic import atomic_writer

FORMAT = "nectargan.loss_log"
VERSION = 1
INDEX_NAME = "loss_log.json"
SEGMENT_DIR = "loss_log"
FIELDS = ("epoch", "step", "raw", "weight")

Records = dict[str, dict[str, list[Any]]]


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename."""
    with atomic_writer(path, "w") as handle:
        json.dump(data, handle, allow_nan=False, separators=(",", ":"))


def json_number(value: float) -> float | None:
    """JSON has no NaN/inf: those become null."""
    return value if math.isfinite(value) else None


class LossLog:
    """Appends loss records to ``<experiment_dir>/loss_log*``; one instance per run."""

    def __init__(self, experiment_dir: str | Path) -> None:
        self.dir = Path(experiment_dir)
        self.index_path = self.dir / INDEX_NAME
        self.segment_dir = self.dir / SEGMENT_DIR
        self.index = self._load_index()
        self._run_started = False

    def last_steps(self) -> dict[str, int]:
        """Last step logged per loss by earlier runs, so a resume can continue the count."""
        return {name: meta["last_step"] for name, meta in self.index["losses"].items()}

    def describe_loss(self, name: str, meta: dict[str, Any]) -> None:
        """Record a loss's static description (tags, weight, schedule) in the index."""
        entry = self.index["losses"].setdefault(name, {"last_step": -1, "records": 0})
        entry.update(meta)

    def write_segment(self, records: Records) -> Path | None:
        """Persist ``records`` (once this returns, they are on disk); None if empty."""
        records = {name: cols for name, cols in records.items() if cols["step"]}
        self._start_run()
        return self._write_segment(records) if records else None

    def write_index(self) -> None:
        """Rewrite the small index (per-loss metadata, runs, segment count) atomically."""
        atomic_write_json(self.index_path, self.index)

    def _start_run(self) -> None:
        if self._run_started:
            return
        self._run_started = True
        self.index["runs"].append(
            {
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "first_segment": self.index["segments"] + 1,
            }
        )

    def _write_segment(self, records: Records) -> Path:
        number = self._next_segment_number()
        path = self.segment_dir / f"{number:06d}.json"
        body = {name: _clean_columns(cols) for name, cols in records.items()}
        atomic_write_json(path, {"segment": number, "run": len(self.index["runs"]), "losses": body})
        self.index["segments"] = number
        for name, cols in records.items():
            entry = self.index["losses"].setdefault(name, {"last_step": -1, "records": 0})
            entry["last_step"] = max(entry["last_step"], int(max(cols["step"])))
            entry["records"] += len(cols["step"])
        return path

    def _next_segment_number(self) -> int:
        """Never reuse a number, even if the index lags behind the files (crash mid-flush)."""
        number = self.index["segments"] + 1
        while (self.segment_dir / f"{number:06d}.json").exists():
            number += 1
        return number

    def _load_index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return {"format": FORMAT, "version": VERSION, "segments": 0, "runs": [], "losses": {}}
        try:
            index = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable loss log index {str(self.index_path)!r}: {exc}") from exc
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise ValueError(
                f"{str(self.index_path)!r} is not a {FORMAT} index (refusing to overwrite it)"
            )
        return index


def _clean_columns(cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        "epoch": list(cols["epoch"]),
        "step": list(cols["step"]),
        "raw": [json_number(v) for v in cols["raw"]],
        "weight": [json_number(v) for v in cols["weight"]],
    }


def read_loss_log(experiment_dir: str | Path) -> dict[str, Any]:
    """Merge the index and all segments: ``{'losses': {name: {field: [...]}}, 'runs': [...]}``.

    Each loss also gets a ``weighted`` column (``raw * weight``, None if unknown).
    """
    directory = Path(experiment_dir)
    index = LossLog(directory).index
    merged: Records = {name: {f: [] for f in FIELDS} for name in index["losses"]}
    for path in sorted((directory / SEGMENT_DIR).glob("[0-9]*.json")):
        segment = json.loads(path.read_text(encoding="utf-8"))
        for name, cols in segment["losses"].items():
            target = merged.setdefault(name, {f: [] for f in FIELDS})
            for field in FIELDS:
                target[field].extend(cols[field])
    for cols in merged.values():
        cols["weighted"] = [
            None if r is None or w is None else r * w
            for r, w in zip(cols["raw"], cols["weight"], strict=True)
        ]
    return {"index": index, "runs": index["runs"], "losses": merged}
