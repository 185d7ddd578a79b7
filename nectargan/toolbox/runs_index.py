"""Every experiment under the output roots, summarised for the Runs page, cheaply.

The Runs page is redrawn every second or so over hundreds of runs, so a
summary is rebuilt only when one of the few files it comes from changed
(their size and mtime are the cache key: a handful of ``stat`` calls per run);
loss logs are never read here. The status comes from the run's own record
(:func:`nectargan.runs.status.read_status`); a run made before records existed
gets a guess from its files, and says that it is one.
"""

from __future__ import annotations

import collections
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nectargan import experiment_layout as layout
from nectargan.runs import records
from nectargan.runs.files import epochs_from_files, lock_holder, stat_signatures, total_epochs
from nectargan.runs.status import lock_is_held, read_status
from nectargan.toolbox.run_watch import RunWatch

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

# the files a summary is made from: any change to one of them rebuilds it
WATCHED = (
    ".",  # the folder: any file created or renamed into place (every atomic write)
    layout.LOCK_FILE,  # a run taking or letting go of the lock writes its pid or clears it
    layout.RUN_STATUS_FILE,
    layout.VAL_METRICS_FILE,
    layout.CONFIG_FILE,
    layout.EXAMPLES_DIR,
    layout.CHECKPOINT_DIR,
    layout.LOSS_LOG_INDEX,
    layout.EPOCH_STATS_FILE,
    layout.TRAIN_LOG,
)
MARKERS = (layout.CONFIG_FILE, layout.RUN_STATUS_FILE, layout.LOSS_LOG_INDEX, layout.CHECKPOINT_DIR)
UNKNOWN = "unknown"
MAX_WATCHED = 32  # runs followed in detail at once (open Run pages); the oldest is dropped


@dataclass
class RunSummary:
    """One row of the Runs page (and of ``GET /api/runs``)."""

    id: str  # "<output root number>/<folder name>"
    root: int
    name: str
    path: str
    state: str  # running, finished, interrupted, disk_full, crashed, or unknown
    label: str
    epochs_completed: int
    total_epochs: int | None
    best: dict[str, Any] | None  # the best val L1 row: epoch, l1, psnr, ssim
    last_activity: float  # seconds since the epoch
    thumbnail: str | None  # relative name of the newest example image
    pid: int | None  # the live process, when running
    recorded: bool  # False: the status is a guess from the files

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def is_experiment(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in MARKERS)


def _signature(folder: Path) -> tuple[tuple[int, int] | None, ...]:
    return stat_signatures(folder, WATCHED)


class RunIndex:
    """Summaries of every run, each rebuilt only when its files changed."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self._cache: dict[Path, tuple[tuple, RunSummary]] = {}
        self._known: set[Path] = set()  # folders seen to be experiments (they stay so)
        self._last_list: list[RunSummary] = []
        self._watches: collections.OrderedDict[Path, RunWatch] = collections.OrderedDict()
        self._lock = threading.Lock()

    def list(self) -> list[RunSummary]:
        """Every run under every output root, the most recently active first.

        The same list object comes back while nothing changed, so a stream can
        tell "no news" without comparing or serialising anything.
        """
        found = []
        for number, root in enumerate(self.toolbox.output_roots()):
            found += [self.summary(number, folder) for folder in self._experiments(root)]
        found.sort(key=lambda s: s.last_activity, reverse=True)
        with self._lock:
            if [id(s) for s in found] != [id(s) for s in self._last_list]:
                self._last_list = found
            return self._last_list

    def _experiments(self, root: Path) -> list[Path]:
        try:
            with os.scandir(root) as entries:
                folders = [Path(e.path) for e in entries if e.is_dir()]
        except OSError:
            return []  # an output root not created yet holds no runs
        known = self._known
        fresh = [f for f in folders if f not in known and is_experiment(f)]
        known.update(fresh)
        return [f for f in folders if f in known]

    def summary(self, root: int, folder: Path) -> RunSummary:
        """Rebuilt only when one of its files changed, or a running run's lock was let go."""
        signature = _signature(folder)
        with self._lock:
            cached = self._cache.get(folder)
        still_valid = cached is not None and cached[0] == signature
        if still_valid and (cached[1].state != "running" or lock_is_held(folder)):
            return cached[1]
        summary = summarise(root, folder, signature)
        with self._lock:
            self._cache[folder] = (signature, summary)
        return summary

    def get(self, root: int, folder: Path) -> RunSummary:
        return self.summary(root, folder)

    def watch(self, folder: Path) -> RunWatch:
        """The one incremental follower of ``folder`` (pages watching it share it)."""
        with self._lock:
            watch = self._watches.pop(folder, None) or RunWatch(folder)
            self._watches[folder] = watch
            while len(self._watches) > MAX_WATCHED:
                self._watches.popitem(last=False)
            return watch


def summarise(root: int, folder: Path, signature: tuple | None = None) -> RunSummary:
    """Build one run's summary from its record (or a guess) and its small files."""
    signature = signature if signature is not None else _signature(folder)
    config = _read_json(folder / layout.CONFIG_FILE)
    status = read_status(folder)
    if status is not None:
        state, label = status.state, status.label
        done, total = status.epochs_completed, status.total_epochs or total_epochs(config)
        pid = status.pid if status.live else None
    else:
        done, total = epochs_from_files(folder), total_epochs(config)
        state, label, pid = _guess_state(folder, done, total)
    return RunSummary(
        id=f"{root}/{folder.name}",
        root=root,
        name=folder.name,
        path=str(folder),
        state=state,
        label=label,
        epochs_completed=done,
        total_epochs=total,
        best=_best(folder),
        last_activity=max((s[0] for s in signature if s is not None), default=0) / 1e9,
        thumbnail=newest_example(folder),
        pid=pid,
        recorded=status is not None,
    )


def _guess_state(folder: Path, done: int, total: int | None) -> tuple[str, str, int | None]:
    """A run without a status record: the lock tells a live one, the files the rest."""
    holder = lock_holder(folder)
    if holder is not None or lock_is_held(folder):
        return "running", "running", holder
    if total and done >= total:
        return "finished", "finished", None
    if (folder / layout.CHECKPOINT_DIR / layout.INTERRUPTED).is_file():
        return "interrupted", "interrupted", None
    return UNKNOWN, "stopped (no status record)", None


def newest_example(folder: Path) -> str | None:
    """``examples/epoch_NNNN_0.png`` of the latest epoch with examples (the first of them)."""
    try:
        names = os.listdir(folder / layout.EXAMPLES_DIR)
    except OSError:
        return None
    best: tuple[int, int, str] | None = None
    for name in names:
        m = layout.EXAMPLE_RE.match(name)
        if m:
            key = (int(m.group(1)), -int(m.group(2)), name)
            best = key if best is None or key > best else best
    return f"{layout.EXAMPLES_DIR}/{best[2]}" if best else None


def _best(folder: Path) -> dict[str, Any] | None:
    """The best val L1 row with its PSNR and SSIM (the file's ``best`` may hold L1 only)."""
    rows = records.read_val_metrics(folder)
    row = records.best_row(rows) or records.read_val_best(folder)
    if not row:
        return None
    return {k: row.get(k) for k in ("epoch", "l1", "psnr", "ssim")}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
