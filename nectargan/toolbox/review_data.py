"""The Review page's data: one run, or 2-8 runs compared, as small JSON.

Everything is read by :mod:`nectargan.review` (what ``nectargan report`` and
``replay`` read) and compared by :mod:`nectargan.review.compare` (what
``report A B`` puts on its comparison page), so the page and the commands show
the same numbers. Loss curves are cut to :data:`CHART_POINTS` bucket means per
series, so a 1M-step log is a few kilobytes for the browser to draw.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nectargan import experiment_layout as layout
from nectargan.config.config import default_config_dict
from nectargan.losses.loss_columns import SUFFIX as COLUMNS_SUFFIX
from nectargan.review import compare
from nectargan.review.experiment_reader import Experiment, read_experiment, timing_lines
from nectargan.visualizer.visdom.panels import flat_changes

CHART_POINTS = 400
MAX_COMPARE = 8
CACHE_ENTRIES = 32  # small JSON payloads (tens of kB each), not the logs they came from


class PayloadCache:
    """Payloads by run folders, kept while none of their files changed.

    Reading a 1M-step loss log means parsing millions of JSON numbers (seconds);
    its payload is a few hundred points per series. A finished run's files do not
    change, so every visit after the first answers from here; a live run's new
    segment changes the signature and is read again.
    """

    def __init__(self) -> None:
        self._items: OrderedDict[tuple, tuple[tuple, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, folders: Sequence[Path], build: Callable[[], dict[str, Any]]):
        signature = tuple(files_signature(f) for f in folders)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == signature:
                self._items.move_to_end(key)
                return hit[1]
        payload = build()
        with self._lock:
            self._items[key] = (signature, payload)
            while len(self._items) > CACHE_ENTRIES:
                self._items.popitem(last=False)
        return payload


def files_signature(folder: Path) -> tuple:
    """(name, mtime, size) of the run's files and its loss-log segments: what a review reads.

    Not the segments' column files: the first read of an old run writes them, and they
    hold what the segments hold (a new one must not make the next visit read again).
    """
    out = []
    for sub in (folder, folder / layout.LOSS_LOG_DIR, folder / layout.EXAMPLES_DIR):
        try:
            with os.scandir(sub) as entries:
                for entry in entries:
                    if entry.is_file() and not entry.name.endswith(COLUMNS_SUFFIX):
                        st = entry.stat()
                        out.append((sub.name, entry.name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((sub.name, None))
    return tuple(sorted(out, key=repr))


CACHE = PayloadCache()


def bucket_means(x: np.ndarray, y: np.ndarray, points: int = CHART_POINTS) -> dict[str, list]:
    """At most ``points`` (mean x, mean of the finite y) pairs; an all-NaN bucket is a gap."""
    n = len(x)
    if n <= points:
        return {"x": _plain(x), "y": _plain(y)}
    edges = np.linspace(0, n, points + 1).astype(np.int64)
    starts = edges[:-1]
    counts = np.diff(edges)
    finite = np.isfinite(y)
    sums = np.add.reduceat(np.where(finite, y, 0.0), starts)
    kept = np.add.reduceat(finite, starts, dtype=np.int64)  # dtype=: no converted copy
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(kept > 0, sums / np.maximum(kept, 1), np.nan)
    xs = np.add.reduceat(x, starts, dtype=np.float64) / counts
    return {"x": _plain(xs), "y": _plain(means)}


def _plain(values: np.ndarray) -> list[float | None]:
    """JSON numbers; NaN and Inf become null (a gap in the chart)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def loss_curves(exp: Experiment) -> dict[str, dict[str, Any]]:
    """Per loss: its tags, and the weighted and raw values as bucket means over steps."""
    out = {}
    for name, series in exp.losses.items():
        out[name] = {
            "tags": series.tags,
            "weighted": bucket_means(series.step, series.weighted),
            "raw": bucket_means(series.step, series.raw),
        }
    return out


def example_epochs(exp: Experiment) -> list[dict[str, Any]]:
    """Each epoch's example triplets as names relative to the run's folder (the slider)."""
    return [
        {"epoch": e.epoch, "images": [p.relative_to(exp.path).as_posix() for p in e.images]}
        for e in exp.examples
    ]


def one_run(folder: Path) -> dict[str, Any]:
    """Everything the one-run view shows (from :data:`CACHE` while the files are unchanged)."""
    return CACHE.get(("one", str(folder)), [folder], lambda: _one_run(folder))


def compared(folders: Sequence[Path], labels: Sequence[str]) -> dict[str, Any]:
    """What ``report A B`` compares: best epochs, overlaid curves, config keys that differ."""
    key = ("compare", *map(str, folders), *labels)
    return CACHE.get(key, folders, lambda: _compared(folders, labels))


def _one_run(folder: Path) -> dict[str, Any]:
    exp = read_experiment(folder)
    config = exp.config or {}
    return {
        "name": exp.name,
        "epochs": f"{exp.epochs_completed} of {exp.total_epochs or '?'}",
        "losses": loss_curves(exp),
        "val_metrics": exp.val_metrics,
        "val_best": exp.val_best,
        "epoch_stats": exp.epoch_stats,
        "examples": example_epochs(exp),
        "config": config,
        "changed": flat_changes(config, default_config_dict()) if config else {},
        "timing": timing_lines(exp),
        "problems": exp.problems,
    }


def _compared(folders: Sequence[Path], labels: Sequence[str]) -> dict[str, Any]:
    experiments = compare.read_experiments(folders)
    summaries = compare.summarize(experiments, labels)
    best = compare.best_runs(summaries)
    return {
        "runs": [_summary_json(i, s, best) for i, s in enumerate(summaries)],
        "colors": list(compare.RUN_COLORS[: len(summaries)]),
        "losses": {
            name: [
                bucket_means(s.exp.losses[name].step, s.exp.losses[name].weighted)
                if name in s.exp.losses
                else None
                for s in summaries
            ]
            for name in compare.loss_names(summaries)
        },
        "val": [
            {
                "title": pane.ylabel,
                "series": {str(i): {"x": xs, "y": ys} for i, (xs, ys) in s.items()},
            }
            for pane, s in compare.val_overlay(summaries)
        ],
        "differences": [
            {"key": key, "values": values}
            for key, values in compare.config_differences(experiments)
        ],
        "notes": compare.missing_validation(summaries),
    }


def _summary_json(i: int, s: compare.RunSummary, best: dict[str, set[int]]) -> dict[str, Any]:
    return {
        "label": s.label,
        "epochs": s.epochs_text,
        "best": s.best,
        "best_in": sorted(key for key, runs in best.items() if i in runs),
        "images_per_s": s.images_per_s,
        "seconds_per_epoch": s.seconds_per_epoch,
        "final_losses": s.final_losses,
    }
