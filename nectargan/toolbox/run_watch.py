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
import time
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.losses.loss_log import read_segment_arrays
from nectargan.runs import records
from nectargan.runs.files import epochs_from_files, stat_signatures, total_epochs
from nectargan.runs.status import lock_is_held, read_status
from nectargan.toolbox.loss_curves import LossCurve
from nectargan.utils.durations import format_duration

LOG_TAIL_LINES = 40
LOG_FIRST_READ_BYTES = 64 * 1024  # a long log is entered near its end, never read whole
PROGRESS_RE = re.compile(
    r"epoch (\d+)/(\d+) \[[#.]*\] (\d+)/(\d+) ([\d.]+) it/s ETA (\S+)(?: \| (.*))?$"
)
Signature = tuple[int, int] | None
# a signature younger than this is not trusted: a second change within the file system's
# timestamp granularity (coarse; 1-2 s on some) would leave it equal
RACY_NS = 2_000_000_000
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


class LogTail:
    """The last lines of ``train.log``, following what is appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.progress: str | None = None
        self._partial = ""
        self._inode: int | None = None
        self.version = 0  # moves whenever ``lines`` or ``progress`` may have changed

    def update(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        if st.st_ino != self._inode or st.st_size < self.offset:  # replaced or truncated
            self._inode, self._partial = st.st_ino, ""
            self.offset = max(0, st.st_size - LOG_FIRST_READ_BYTES)
            self.lines.clear()
            self.version += 1
        if st.st_size == self.offset:
            return False
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(st.st_size - self.offset)
        self.offset += len(chunk)
        self._take(chunk.decode("utf-8", "replace"))
        self.version += 1
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
    """Follows one experiment folder; :meth:`read` gives the page's data.

    Each part of that data is kept with the signature of the files it comes from
    and rebuilt only when they changed: a running run appends to ``train.log``
    every second, which must cost a read of the new bytes, not a rebuild of the
    loss curves, a listing of the checkpoints and a new status record. Parts
    that did not change are the very same objects as before, so the stream
    reuses their JSON text too (:class:`nectargan.toolbox.sse.JsonParts`).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.curves: dict[str, LossCurve] = {}
        self._curves_version = 0
        self._segments: dict[str, Signature] = {}
        self._parts: dict[str, tuple[Any, Any]] = {}
        self.log = LogTail(folder / layout.TRAIN_LOG)
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._racy: frozenset[int] = frozenset()
        self._snapshot: dict[str, Any] | None = None
        self.memo: tuple[Any, ...] | None = None  # for the page's own additions

    def read(self) -> dict[str, Any]:
        """The page's data; the same object while nothing changed (one reader at a time)."""
        with self._lock:
            seen = self._signature()
            racy = _racy(seen)
            if seen != self._seen or racy or self._snapshot is None:
                self._seen, self._racy = seen, racy
                self.update()
                self._snapshot = self.snapshot()
            return self._snapshot

    def _signature(self) -> tuple:
        """Every file and folder the snapshot reads, and whether the run holds its lock:
        a folder's mtime moves with each file renamed into it (every atomic write)."""
        return (*stat_signatures(self.folder, WATCHED), lock_is_held(self.folder))

    def _sig(self, name: str) -> Any:
        """The signature of one watched file (from the last :meth:`read`), or the lock's
        state for ``"held"``. None (rebuild what depends on it) before the first read and
        while the file changed too recently to be sure no second change hides in the same
        timestamp (a folder's mtime has a coarse clock, and its size does not move)."""
        if self._seen is None:
            return None
        if name == "held":
            return self._seen[-1]
        at = WATCHED.index(name)
        return None if at in self._racy else self._seen[at]

    def _part(self, name: str, key: Any, build: Any) -> Any:
        """``build()``, or the value it gave last time when ``key`` is unchanged; a key that
        is or holds None (a racy or absent file) is built every time."""
        cached = self._parts.get(name)
        unknown = key is None or (isinstance(key, tuple) and None in key)
        if cached is not None and not unknown and cached[0] == key:
            return cached[1]
        value = build()
        self._parts[name] = (key, value)
        return value

    # -- reading ------------------------------------------------------------------------

    def update(self) -> None:
        """Read what is new: loss segments when their folder changed, the log's new bytes."""
        self._part("losses-read", self._sig(layout.LOSS_LOG_DIR), self._update_losses)
        self._part("log-read", self._sig(layout.TRAIN_LOG), self.log.update)

    def _small_file(self, name: str, read: Any) -> Any:
        """``read(folder)`` again only when the file's size or mtime changed."""
        return self._part(name, stat_signature(self.folder / name), lambda: read(self.folder))

    def _update_losses(self) -> None:
        folder = self.folder / layout.LOSS_LOG_DIR
        try:
            names = sorted(n for n in os.listdir(folder) if layout.SEGMENT_RE.match(n))
        except OSError:
            return
        sigs = {n: stat_signature(folder / n) for n in names}
        before = len(self._segments)
        if any(sigs.get(n) != s for n, s in self._segments.items()):
            self.curves, self._segments, before = {}, {}, -1  # rewound or rewritten: rebuild
        index = self._small_file(layout.LOSS_LOG_INDEX, _read_index)
        for name in names:
            if name not in self._segments:
                self._add_segment(folder / name, index)
                self._segments[name] = sigs[name]
        if len(self._segments) != before:
            self._curves_version += 1

    def _add_segment(self, path: Path, index: dict[str, Any]) -> None:
        """One segment's losses, read as the Review page reads them: from its column file
        when that is current, else its JSON (a torn one is skipped, a bad loss left out).
        A missing column file is not written from here: that would change the folder this
        watch follows (the Toolbox's column warmer writes them, in the background)."""
        segment = read_segment_arrays(path, cache=False)
        if segment is None:
            return
        meta = (index.get("losses") if isinstance(index, dict) else None) or {}
        for loss, cols in segment.losses.items():
            curve = self.curves.setdefault(loss, LossCurve(_tags(loss, meta.get(loss))))
            curve.extend(cols["step"], cols["raw"] * cols["weight"])

    # -- what the page shows ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        sig, held, folder = self._sig, self._sig("held"), self.folder
        config = self._part("config", sig("."), lambda: _read_config(folder))  # folder: new files
        status_key = (sig(layout.RUN_STATUS_FILE), held)
        status = self._part("status", status_key, lambda: read_status(folder, held))
        val_key, stats_key = sig(layout.VAL_METRICS_FILE), sig(layout.EPOCH_STATS_FILE)
        val_rows = self._part("val", val_key, lambda: records.read_val_metrics(folder))
        stats = self._part("stats", stats_key, lambda: records.read_epoch_stats(folder))
        dirs = (sig(layout.EXAMPLES_DIR), sig(layout.CHECKPOINT_DIR))
        out: dict[str, Any] = {
            "status": self._part("status-json", status_key, lambda: status and status.to_json()),
            "running": held,
            "pid": self._part("pid", (sig(layout.LOCK_FILE), held), lambda: _pid_of(folder, held)),
            "losses": self._part("losses", self._curves_version, self._charts),
            "val": self._part("val-tail", val_key, lambda: val_rows[-50:]),
            "best": self._part("best", val_key, lambda: records.best_row(val_rows)),
            "lr": self._part("lr", stats_key, lambda: _last_lr(stats)),
            "log": self._part("log", self.log.version, lambda: list(self.log.lines)),
            "examples": self._part("examples", dirs[0], self._newest_examples),
            "checkpoints": self._part("checkpoints", dirs[1], self._checkpoints),
            "visdom": self._part("visdom", sig("."), lambda: _visdom_target(config, folder.name)),
        }
        key = (*status_key, sig("."), stats_key, self.log.version, *dirs)
        out.update(self._part("progress", key, lambda: self._progress(status, config, stats)))
        return out

    def _charts(self) -> dict[str, Any]:
        return {name: {"tags": c.tags, **c.chart()} for name, c in self.curves.items()}

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


def _racy(signature: tuple) -> frozenset[int]:
    """Positions of the signatures changed less than ``RACY_NS`` ago."""
    recent = time.time_ns() - RACY_NS
    return frozenset(
        i for i, sig in enumerate(signature) if isinstance(sig, tuple) and sig[0] > recent
    )


def _pid_of(folder: Path, held: bool) -> int | None:
    """The pid in the lock file of a run that holds its lock (as ``lock_holder``, without
    asking ``/proc/locks`` again: the signature just did)."""
    if not held:
        return None
    try:
        return int((folder / layout.LOCK_FILE).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _last_lr(stats: list[dict]) -> dict[str, Any] | None:
    return {k: stats[-1].get(k) for k in ("lr_G", "lr_D")} if stats else None


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
