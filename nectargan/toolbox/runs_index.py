"""Every experiment under the output roots, summarised for the Runs page, cheaply.

The Runs page is redrawn every second or so over hundreds of runs, so a
summary is rebuilt only when one of the few files it comes from changed
(their size and mtime are the cache key: a handful of ``stat`` calls per run);
loss logs are never read here. A running run's ``train.log`` grows every
second, which moves only its last activity: that is updated without reading
anything. A run that is not running is looked at through :data:`SENTINELS`
alone (2 ``stat`` calls, not 10) on most refreshes: nothing writes its files
without first taking its lock (which writes the pid into the lock file) or
renaming a file into its folder; every ``FULL_CHECK_EVERY``-th refresh still
looks at all of them (a file edited in place or deleted by hand). The status comes from the run's own record
(:func:`nectargan.runs.status.read_status`); a run made before records existed
gets a guess from its files, and says that it is one.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nectargan import experiment_layout as layout
from nectargan.runs import records
from nectargan.runs.files import epochs_from_files, lock_holder, stat_signatures, total_epochs
from nectargan.runs.status import lock_is_held, read_status
from nectargan.toolbox.run_watch import RACY_NS, RunWatch

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
    layout.TRAIN_LOG,  # last: it moves only the last activity (see _same_content)
)
# what any change to a run that is not running moves first (see the module's docstring)
SENTINELS = (".", layout.LOCK_FILE)
SENTINEL_AT = tuple(WATCHED.index(name) for name in SENTINELS)
FULL_CHECK_EVERY = 10
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


def _signature(folder: str | Path) -> tuple[tuple[int, int] | None, ...]:
    return stat_signatures(folder, WATCHED)


def _last_activity(signature: tuple) -> float:
    return max((s[0] for s in signature if s is not None), default=0) / 1e9


def _same_content(old: tuple, new: tuple) -> bool:
    """Whether every file a summary is read from (all but ``train.log``) is unchanged, and
    none changed so recently that a second change could hide in the same timestamp."""
    return old[:-1] == new[:-1] and _settled(new[:-1])


def _settled(signatures: tuple) -> bool:
    """No file among them changed so recently that a second change could hide in the
    same timestamp (see :data:`~nectargan.toolbox.run_watch.RACY_NS`)."""
    recent = time.time_ns() - RACY_NS
    return all(s is None or s[0] <= recent for s in signatures)


class RunIndex:
    """Summaries of every run, each rebuilt only when its files changed."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self._cache: dict[str, tuple[tuple, RunSummary]] = {}
        self._known: set[str] = set()  # folders seen to be experiments (they stay so)
        self._last_list: list[RunSummary] = []
        self._watches: collections.OrderedDict[Path, RunWatch] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._refreshes = 0

    def list(self) -> list[RunSummary]:
        """Every run under every output root, the most recently active first.

        The same list object comes back while nothing changed, so a stream can
        tell "no news" without comparing or serialising anything.
        """
        found = []
        self._refreshes += 1
        for number, root in enumerate(self.toolbox.output_roots()):
            for i, folder in enumerate(self._experiments(root)):  # full checks spread evenly
                quick = (self._refreshes + i) % FULL_CHECK_EVERY != 0
                found.append(self.summary(number, folder, quick))
        found.sort(key=lambda s: s.last_activity, reverse=True)
        with self._lock:
            if [id(s) for s in found] != [id(s) for s in self._last_list]:
                self._last_list = found
            return self._last_list

    def _experiments(self, root: Path) -> list[str]:
        """The experiment folders in ``root``, as strings (cheaper than paths, hundreds of
        times a second)."""
        try:
            with os.scandir(root) as entries:
                folders = [e.path for e in entries if e.is_dir()]
        except OSError:
            return []  # an output root not created yet holds no runs
        known = self._known
        fresh = [f for f in folders if f not in known and is_experiment(Path(f))]
        known.update(fresh)
        return [f for f in folders if f in known]

    def summary(self, root: int, folder: str | Path, quick: bool = False) -> RunSummary:
        """Rebuilt only when one of its files changed, or a running run's lock was let go;
        a grown ``train.log`` alone gives the same summary with its new last activity.
        ``quick``: a run that is not running is looked at through its sentinels only."""
        key = os.fspath(folder)
        with self._lock:
            cached = self._cache.get(key)
        if quick and cached is not None and cached[1].state != "running":
            sentinels = stat_signatures(key, SENTINELS)
            if sentinels == tuple(cached[0][i] for i in SENTINEL_AT) and _settled(sentinels):
                return cached[1]
        signature = _signature(key)
        if cached is None or not _same_content(cached[0], signature):
            summary = summarise(root, Path(folder), signature)
        elif cached[1].state == "running" and not lock_is_held(key):
            summary = summarise(root, Path(folder), signature)  # let go: crashed or ended
        elif cached[0][-1] != signature[-1]:  # only train.log moved
            summary = dataclasses.replace(cached[1], last_activity=_last_activity(signature))
        else:
            return cached[1]
        with self._lock:
            self._cache[key] = (signature, summary)
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
        last_activity=_last_activity(signature),
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
