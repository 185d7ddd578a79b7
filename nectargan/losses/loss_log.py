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

Reading is tolerant, for runs that crashed mid-write: :func:`read_log_files`
keeps every readable segment and lists what it skipped, and why, in
``problems``. It is the one reader: ``read_loss_log`` and the experiment
reader behind replay and report both use it. File names come from
:mod:`nectargan.experiment_layout`; nothing here imports torch.

Each segment also gets a binary column file (:mod:`nectargan.losses.loss_columns`)
when it is written, and :func:`read_log_arrays` reads those instead of the JSON
when they are current: the same arrays, without parsing millions of numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.losses import loss_columns
from nectargan.utils.atomic import atomic_writer
from nectargan.utils.json_files import read_json_noting
from nectargan.utils.numbers import is_number

FORMAT = layout.LOSS_LOG_FORMAT
VERSION = layout.LOSS_LOG_VERSION
INDEX_NAME = layout.LOSS_LOG_INDEX
SEGMENT_DIR = layout.LOSS_LOG_DIR
FIELDS = layout.LOSS_LOG_FIELDS

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
        path = self.segment_dir / layout.segment_name(number)
        body = {name: _clean_columns(cols) for name, cols in records.items()}
        run = len(self.index["runs"])
        atomic_write_json(path, {"segment": number, "run": run, "losses": body})
        write_columns(path, run, body)
        self.index["segments"] = number
        for name, cols in records.items():
            entry = self.index["losses"].setdefault(name, {"last_step": -1, "records": 0})
            entry["last_step"] = max(entry["last_step"], int(max(cols["step"])))
            entry["records"] += len(cols["step"])
        return path

    def _next_segment_number(self) -> int:
        """Never reuse a number, even if the index lags behind the files (crash mid-flush)."""
        number = self.index["segments"] + 1
        while (self.segment_dir / layout.segment_name(number)).exists():
            number += 1
        return number

    def _load_index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return empty_index()
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


def write_columns(path: Path, run: int, body: Records) -> Path | None:
    """Segment ``path``'s column file, made from ``body`` as the reader would make it.

    Once per flush, off the per-step path. Never raises: the segment is already
    saved, and a flush that failed now would keep its records and write them again
    (twice in the log); without its column file a reader parses the segment.
    """
    try:
        return loss_columns.store(path, _column_file(path, run, body))
    except Exception:  # see above: any failure here must stay here
        return None


def _column_file(path: Path, run: int, body: Records) -> bytes:
    problems: list[str] = []
    where = f"{SEGMENT_DIR}/{path.name}"
    checked = {}
    for name, cols in body.items():
        columns = _columns(cols, where, name, problems)
        if columns is not None:
            checked[name] = columns
    return loss_columns.encode(loss_columns.Stamp.of(path), run, checked, problems)


def empty_index() -> dict[str, Any]:
    """The index of a log nothing has been written to yet."""
    return {"format": FORMAT, "version": VERSION, "segments": 0, "runs": [], "losses": {}}


# -- reading ----------------------------------------------------------------------------


@dataclass
class SegmentRead:
    """One readable segment: its number, run, file and per-loss columns (equal lengths).

    ``raw``/``weight`` keep ``None`` for a non-finite value; epochs and steps are numbers.
    """

    number: int
    run: int
    path: Path
    losses: dict[str, dict[str, list[Any]]]

    @property
    def records(self) -> int:
        return max((len(cols["step"]) for cols in self.losses.values()), default=0)

    def epochs(self) -> list[float]:
        return [e for cols in self.losses.values() for e in cols["epoch"]]


@dataclass
class LogFiles:
    """What :func:`read_log_files` (segments as :class:`SegmentRead`) or
    :func:`read_log_arrays` (as :class:`SegmentArrays`) found: the index (None when
    unusable), the readable segments, the problems."""

    index: dict[str, Any] | None
    segments: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    folder_exists: bool = False

    @property
    def found(self) -> bool:
        """Whether there is any loss log at all (an index or a segment folder)."""
        return self.index is not None or self.folder_exists


def read_log_files(experiment_dir: str | Path) -> LogFiles:
    """Index and segments of ``experiment_dir``'s loss log, skipping what cannot be read.

    Never raises for a damaged log: a truncated segment (a crash mid-write),
    a foreign index or ragged columns each add one line to ``problems``.
    """
    return _read_log(experiment_dir, _read_segment)


def _read_log(experiment_dir: str | Path, read_segment: Callable[..., Any]) -> LogFiles:
    directory = Path(experiment_dir)
    folder = directory / SEGMENT_DIR
    out = LogFiles(index=None, folder_exists=folder.is_dir())
    out.index = _read_index(directory / INDEX_NAME, out.problems)
    for number, path in _segment_files(folder):
        segment = read_segment(number, path, out.problems)
        if segment is not None:
            out.segments.append(segment)
    return out


@dataclass
class SegmentArrays:
    """One readable segment's per-loss columns as NumPy arrays (float64, NaN for a null;
    ``step`` int64), from its column file when current, else from its JSON."""

    number: int
    run: int
    path: Path
    losses: dict[str, dict[str, Any]]

    @property
    def records(self) -> int:
        return max((len(cols["step"]) for cols in self.losses.values()), default=0)

    def epoch_range(self) -> tuple[float, float] | None:
        """First and last epoch logged in this segment (epochs are always finite)."""
        epochs = [cols["epoch"] for cols in self.losses.values() if len(cols["epoch"])]
        if not epochs:
            return None
        return min(float(e.min()) for e in epochs), max(float(e.max()) for e in epochs)


def read_log_arrays(experiment_dir: str | Path, *, cache: bool = True) -> LogFiles:
    """:func:`read_log_files` as arrays: each segment from its column file when that is
    current, else parsed (the same problems) and, with ``cache``, its column file written
    so the next read is quick (a run from before column files is parsed once)."""
    return _read_log(experiment_dir, partial(_segment_arrays, cache=cache))


def read_segment_arrays(path: Path, *, cache: bool = True) -> SegmentArrays | None:
    """One segment as :func:`read_log_arrays` reads it (its column file when current, else
    its JSON); None when it cannot be read. For a reader that follows a log segment by
    segment (the Toolbox's Run page), not one that reads it whole."""
    match = layout.SEGMENT_RE.match(path.name)
    return _segment_arrays(int(match.group(1)) if match else 0, path, [], cache)


def _segment_arrays(
    number: int, path: Path, problems: list[str], cache: bool
) -> SegmentArrays | None:
    try:
        stamp = loss_columns.Stamp.of(path)  # before reading: a change after it makes it stale
    except OSError:
        stamp = loss_columns.GONE  # parsing it says why
    found = loss_columns.load(path, stamp) or _parse_to_columns(number, path, stamp, cache)
    problems.extend(found.problems)
    if found.run is None:
        return None
    return SegmentArrays(number, found.run, path, found.losses)


def _parse_to_columns(
    number: int, path: Path, stamp: loss_columns.Stamp, cache: bool
) -> loss_columns.Columns:
    """The segment parsed, then encoded and decoded as a column file is (both paths give the
    same arrays) and, with ``cache``, stored. Unreadable: only its problems (run None)."""
    problems: list[str] = []
    data = _parsed_column_file(number, path, stamp, problems)
    if data is None:
        return loss_columns.Columns(None, {}, problems)
    if cache and stamp != loss_columns.GONE:
        loss_columns.store(path, data)
    return loss_columns.decode(data, stamp) or loss_columns.Columns(None, {}, problems)


def _parsed_column_file(
    number: int, path: Path, stamp: loss_columns.Stamp, problems: list[str]
) -> bytes | None:
    segment = _read_segment(number, path, problems)
    if segment is None:
        return None
    return loss_columns.encode(stamp, segment.run, segment.losses, problems)


def write_missing_columns(experiment_dir: str | Path) -> int:
    """Column files for the segments without a current one (a run from before them, or
    copied without them); returns how many were written. What the Toolbox runs in the
    background at start, so that an old run's first review is quick too."""
    written = 0
    for number, path in _segment_files(Path(experiment_dir) / SEGMENT_DIR):
        try:
            stamp = loss_columns.Stamp.of(path)
        except OSError:
            continue
        if loss_columns.is_current(path, stamp):
            continue
        data = _parsed_column_file(number, path, stamp, [])
        if data is not None and loss_columns.store(path, data) is not None:
            written += 1
    return written


def read_loss_log(experiment_dir: str | Path) -> dict[str, Any]:
    """Merge the index and all readable segments into one dict.

    ``{'index': ..., 'runs': [...], 'losses': {name: {field: [...]}}, 'problems': [...]}``;
    each loss also gets a ``weighted`` column (``raw * weight``, None if unknown).
    """
    files = read_log_files(experiment_dir)
    index = files.index if files.index is not None else empty_index()
    merged: Records = {name: {f: [] for f in FIELDS} for name in index.get("losses") or {}}
    for segment in files.segments:
        for name, cols in segment.losses.items():
            target = merged.setdefault(name, {f: [] for f in FIELDS})
            for column in FIELDS:
                target[column].extend(cols[column])
    for cols in merged.values():
        cols["weighted"] = [
            None if r is None or w is None else r * w
            for r, w in zip(cols["raw"], cols["weight"], strict=True)
        ]
    runs = index.get("runs")
    return {
        "index": index,
        "runs": runs if isinstance(runs, list) else [],
        "losses": merged,
        "problems": files.problems,
    }


def _read_index(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = _load_json(path, problems, "loss log index")
    if not isinstance(data, dict) or not isinstance(data.get("losses", {}), dict):
        if data is not None:
            problems.append(f"{INDEX_NAME}: not a loss log index, ignored")
        return None
    return data


def _segment_files(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in folder.iterdir() if (m := layout.SEGMENT_RE.match(p.name))
    ]
    return sorted(found)


def _read_segment(number: int, path: Path, problems: list[str]) -> SegmentRead | None:
    where = f"{SEGMENT_DIR}/{path.name}"
    data = _load_json(path, problems, "loss log segment")
    body = data.get("losses") if isinstance(data, dict) else None
    if not isinstance(body, dict):
        if data is not None:
            problems.append(f"{where}: no 'losses' in it, skipped")
        return None
    losses = {}
    for name, cols in body.items():
        columns = _columns(cols, where, name, problems)
        if columns is not None:
            losses[name] = columns
    run = data.get("run")
    return SegmentRead(number, run if isinstance(run, int) else 0, path, losses)


def _columns(cols: Any, where: str, name: str, problems: list[str]) -> dict[str, list] | None:
    """The four columns of one loss cut to a common length; None (and a problem) if unusable."""
    if not isinstance(cols, dict) or not all(isinstance(cols.get(f), list) for f in FIELDS):
        problems.append(f"{where}: loss {name!r} lacks the columns {list(FIELDS)}, skipped")
        return None
    if not all(_numbers_or_nulls(cols[f]) for f in FIELDS):
        problems.append(f"{where}: loss {name!r} has non-numeric values, skipped")
        return None
    if not all(_all_finite(cols[f]) for f in ("epoch", "step")):
        problems.append(f"{where}: loss {name!r} has missing epochs or steps, skipped")
        return None
    n = min(len(cols[f]) for f in FIELDS)
    longest = max(len(cols[f]) for f in FIELDS)
    if longest != n:
        problems.append(
            f"{where}: loss {name!r} columns differ in length; {longest - n} record(s) dropped"
        )
    out = {f: list(cols[f][:n]) for f in FIELDS}
    for f in ("raw", "weight"):
        if not _all_finite(out[f]):  # the common case (all finite) costs one pass, not a copy
            out[f] = [v if v is not None and math.isfinite(v) else None for v in out[f]]
    return out


_JSON_NUMBER_TYPES = frozenset({int, float, type(None)})  # what json.loads gives for numbers


def _numbers_or_nulls(values: list) -> bool:
    """Every value a number or None. A set of types first (``map``: no Python-level loop):
    a 1M-step log's 4M values in a fraction of a second instead of ~30 (one isinstance
    chain each); other types the slow way."""
    if set(map(type, values)) <= _JSON_NUMBER_TYPES:
        return True
    return all(v is None or is_number(v) for v in values)


def _all_finite(values: list) -> bool:
    """No None, NaN or inf: ``math.fsum`` is finite exactly when every value is (one C pass)."""
    if None in values:
        return False
    try:
        return math.isfinite(math.fsum(values))
    except ValueError:  # inf + -inf
        return False
    except OverflowError:  # finite values whose sum overflows: check each
        return all(math.isfinite(v) for v in values)


def _load_json(path: Path, problems: list[str], what: str) -> Any:
    """Parsed JSON, or None with the reason added to ``problems`` (e.g. a truncated file)."""
    where = f"{SEGMENT_DIR}/{path.name}" if path.parent.name == SEGMENT_DIR else path.name
    return read_json_noting(path, problems, what, where)
