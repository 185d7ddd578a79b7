"""One run's live view for the Run page, read incrementally from the run's own files.

A training run must not pay for being watched, so each look costs a few
``stat`` calls and reads only what is new: loss-log segments not seen before
(a segment is written once and never appended to), the bytes appended to
``train.log`` since the last look, and the small per-epoch files only when
their size or mtime changed. A segment that changed or vanished (a resume
from an earlier checkpoint rewinds the log) makes the curves be rebuilt once.
"""

from __future__ import annotations

import collections
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.runs import records
from nectargan.runs.files import epochs_from_files, lock_holder, stat_signatures, total_epochs
from nectargan.runs.status import lock_is_held, read_status
from nectargan.utils.durations import format_duration

LOG_TAIL_LINES = 40
LOG_FIRST_READ_BYTES = 64 * 1024  # a long log is entered near its end, never read whole
CHART_POINTS = 400  # per loss: bucket means, as the dashboard draws long logs
PROGRESS_RE = re.compile(
    r"epoch (\d+)/(\d+) \[[#.]*\] (\d+)/(\d+) ([\d.]+) it/s ETA (\S+)(?: \| (.*))?$"
)
Signature = tuple[int, int] | None
WATCHED = (
    ".",
    layout.LOSS_LOG_DIR,
    layout.EXAMPLES_DIR,
    layout.CHECKPOINT_DIR,
    layout.TRAIN_LOG,
    layout.VAL_METRICS_FILE,  # appended in place: its size moves
    layout.EPOCH_STATS_FILE,
    layout.RUN_STATUS_FILE,
    layout.LOCK_FILE,
)


def stat_signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


@dataclass
class LossCurve:
    """One loss's weighted values in step order (what the dashboard graphs)."""

    tags: list[str]
    steps: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)

    def chart(self, points: int = CHART_POINTS) -> dict[str, list]:
        """At most ``points`` (step, mean) pairs: bucket means keep a 1M-step log drawable."""
        n = len(self.steps)
        if n <= points:
            return {"x": list(self.steps), "y": list(self.values)}
        xs, ys = [], []
        for b in range(points):
            lo, hi = b * n // points, (b + 1) * n // points
            finite = [v for v in self.values[lo:hi] if v is not None]
            xs.append(self.steps[(lo + hi - 1) // 2])
            ys.append(sum(finite) / len(finite) if finite else None)
        return {"x": xs, "y": ys}


class LogTail:
    """The last lines of ``train.log``, following what is appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.progress: str | None = None
        self._partial = ""
        self._inode: int | None = None

    def update(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        if st.st_ino != self._inode or st.st_size < self.offset:  # replaced or truncated
            self._inode, self._partial = st.st_ino, ""
            self.offset = max(0, st.st_size - LOG_FIRST_READ_BYTES)
            self.lines.clear()
        if st.st_size == self.offset:
            return False
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(st.st_size - self.offset)
        self.offset += len(chunk)
        self._take(chunk.decode("utf-8", "replace"))
        return True

    def _take(self, text: str) -> None:
        parts = re.split(r"[\r\n]", self._partial + text)
        self._partial = parts.pop()
        for line in parts:
            line = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).rstrip()
            if not line:
                continue
            if PROGRESS_RE.search(line):
                self.progress = line
            self.lines.append(line)


class RunWatch:
    """Follows one experiment folder; :meth:`update` then :meth:`snapshot`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.curves: dict[str, LossCurve] = {}
        self._segments: dict[str, Signature] = {}
        self._small: dict[str, tuple[Signature, Any]] = {}
        self.log = LogTail(folder / layout.TRAIN_LOG)
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._snapshot: dict[str, Any] | None = None
        self.memo: tuple[tuple, dict[str, Any]] | None = None  # for the page's own additions

    def read(self) -> dict[str, Any]:
        """The page's data; the same object while nothing changed (one reader at a time)."""
        with self._lock:
            seen = self._signature()
            if seen != self._seen or self._snapshot is None:
                self.update()
                self._snapshot, self._seen = self.snapshot(), seen
            return self._snapshot

    def _signature(self) -> tuple:
        """Every file and folder the snapshot reads, and whether the run holds its lock:
        a folder's mtime moves with each file renamed into it (every atomic write)."""
        return (*stat_signatures(self.folder, WATCHED), lock_is_held(self.folder))

    # -- reading ------------------------------------------------------------------------

    def update(self) -> None:
        self._update_losses()
        self.log.update()

    def _small_file(self, name: str, read: Any) -> Any:
        """``read(folder)`` again only when the file's size or mtime changed."""
        sig = stat_signature(self.folder / name)
        cached = self._small.get(name)
        if cached is not None and cached[0] == sig:
            return cached[1]
        value = read(self.folder)
        self._small[name] = (sig, value)
        return value

    def _update_losses(self) -> None:
        folder = self.folder / layout.LOSS_LOG_DIR
        try:
            names = sorted(n for n in os.listdir(folder) if layout.SEGMENT_RE.match(n))
        except OSError:
            return
        sigs = {n: stat_signature(folder / n) for n in names}
        if any(sigs.get(n) != s for n, s in self._segments.items()):
            self.curves, self._segments = {}, {}  # rewound or rewritten: rebuild once
        index = self._small_file(layout.LOSS_LOG_INDEX, _read_index)
        for name in names:
            if name not in self._segments:
                self._add_segment(folder / name, index)
                self._segments[name] = sigs[name]

    def _add_segment(self, path: Path, index: dict[str, Any]) -> None:
        data = _read_json(path)
        losses = data.get("losses") if isinstance(data, dict) else None
        if not isinstance(losses, dict):
            return  # torn by a crash: skipped, as the review's reader does
        meta = index.get("losses") if isinstance(index, dict) else {}
        for loss, cols in losses.items():
            try:
                steps, raw, weight = cols["step"], cols["raw"], cols["weight"]
            except (KeyError, TypeError):
                continue
            curve = self.curves.setdefault(loss, LossCurve(_tags(loss, (meta or {}).get(loss))))
            curve.steps.extend(int(s) for s in steps)
            curve.values.extend(
                None if r is None or w is None else float(r) * float(w)
                for r, w in zip(raw, weight, strict=False)
            )

    # -- what the page shows ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        config = self._small_file(".", _read_config)  # the folder changes with each new file
        status = read_status(self.folder)
        val_rows = self._small_file(layout.VAL_METRICS_FILE, records.read_val_metrics)
        stats = self._small_file(layout.EPOCH_STATS_FILE, records.read_epoch_stats)
        pid = lock_holder(self.folder)
        out: dict[str, Any] = {
            "status": status.to_json() if status is not None else None,
            "running": pid is not None,
            "pid": pid,
            "losses": {name: {"tags": c.tags, **c.chart()} for name, c in self.curves.items()},
            "val": val_rows[-50:],
            "best": records.best_row(val_rows),
            "lr": {k: stats[-1].get(k) for k in ("lr_G", "lr_D")} if stats else None,
            "log": list(self.log.lines),
            "examples": self._newest_examples(),
            "checkpoints": self._checkpoints(),
            "visdom": _visdom_target(config, self.folder.name),
        }
        out.update(self._progress(status, config, stats))
        return out

    def _progress(self, status: Any, config: Any, stats: list[dict]) -> dict[str, Any]:
        """Epoch x of y; iteration, it/s and ETA from the last progress line (or the stats)."""
        total = status.total_epochs if status is not None else total_epochs(config)
        done = status.epochs_completed if status is not None else epochs_from_files(self.folder)
        out = {"epoch": done, "total_epochs": total, "iteration": None, "its": None, "eta": None}
        match = PROGRESS_RE.search(self.log.progress or "")
        if match and (status is None or status.live):
            out["iteration"] = f"{match.group(3)}/{match.group(4)}"
            out["its"], out["eta"] = float(match.group(5)), match.group(6)
        elif stats and status is not None and status.live and total:
            seconds = [float(r.get("seconds") or 0) for r in stats[-5:]]
            mean = sum(seconds) / len(seconds)
            out["eta"] = format_duration(mean * max(0, total - done)) if mean > 0 else None
        return out

    def _newest_examples(self) -> dict[str, Any] | None:
        try:
            names = os.listdir(self.folder / layout.EXAMPLES_DIR)
        except OSError:
            return None
        by_epoch: dict[int, list[tuple[int, str]]] = {}
        for name in names:
            m = layout.EXAMPLE_RE.match(name)
            if m:
                by_epoch.setdefault(int(m.group(1)), []).append((int(m.group(2)), name))
        if not by_epoch:
            return None
        epoch = max(by_epoch)
        files = [f"{layout.EXAMPLES_DIR}/{n}" for _, n in sorted(by_epoch[epoch])]
        return {"epoch": epoch, "files": files}

    def _checkpoints(self) -> list[dict[str, Any]]:
        folder = self.folder / layout.CHECKPOINT_DIR
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return []
        out = []
        for entry in entries:
            if entry.name.endswith(".pt"):
                try:
                    size = entry.stat().st_size
                except OSError:
                    continue
                out.append({"name": entry.name, "bytes": size})
        return out


def _visdom_target(config: Any, default_env: str) -> dict[str, Any] | None:
    """The run's dashboard env and port, when it streamed to one."""
    visdom = ((config or {}).get("visualizer") or {}).get("visdom") or {}
    if not visdom.get("enable"):
        return None
    env = visdom.get("env_name") or default_env
    return {"env": env, "port": visdom.get("port"), "server": visdom.get("server") or "localhost"}


def _tags(name: str, info: Any) -> list[str]:
    tags = info.get("tags") if isinstance(info, dict) else None
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return tags
    prefix = name.split("_", 1)[0]
    return [prefix] if prefix in ("G", "D") else []


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_index(folder: Path) -> Any:
    return _read_json(folder / layout.LOSS_LOG_INDEX)


def _read_config(folder: Path) -> Any:
    """The effective config: the newest ``config.resumeN.json``, else ``config.json``."""
    resumes = sorted(
        (int(m.group(1)), p.name)
        for p in folder.glob("config.resume*.json")
        if (m := layout.RESUME_CONFIG_RE.match(p.name))
    )
    for name in [n for _, n in reversed(resumes)] + [layout.CONFIG_FILE]:
        data = _read_json(folder / name)
        if isinstance(data, dict):
            return data
    return None
