"""What a comparison of several runs shows; shared by ``replay A B`` and ``report A B``.

A researcher choosing between runs wants, per run, its best validation epoch
and metrics, how far and how fast it trained, its final losses, and only the
config keys that differ between the runs. This module computes those from
:class:`Experiment` objects; it draws and sends nothing (replay.py builds the
Visdom panes, compare_report.py the HTML page), so both show the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nectargan.errors import ExperimentUserError
from nectargan.review.experiment_reader import Experiment, read_experiment
from nectargan.runs import records
from nectargan.utils.mapping import flatten
from nectargan.utils.numbers import is_number
from nectargan.visualizer.visdom.panels import VAL_COLUMNS, VAL_METRICS, Pane

# matplotlib's "C0".."C9" and Plotly's default colourway are the same ten colours:
# run i has colour i in the Visdom panes and in the report's PNGs.
RUN_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
ABSENT = "(not set)"  # a key one run's config lacks
UNKNOWN = "unknown (no config.json)"
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True}


class CompareError(ExperimentUserError):
    """The runs given cannot be compared as asked (e.g. the same directory twice)."""


@dataclass
class RunSummary:
    """One run's row of the comparison."""

    label: str
    exp: Experiment
    best: dict[str, Any] | None  # the val_metrics.json row of the best epoch
    images_per_s: float | None
    seconds_per_epoch: float | None
    final_losses: dict[str, float] = field(default_factory=dict)

    @property
    def epochs_text(self) -> str:
        """``3 of 10``, with how the run stopped (``interrupted``, ``crashed``, ...) when it
        did not finish (its status record; an old run's left-over interrupted.pt)."""
        total = self.exp.total_epochs
        text = f"{self.exp.epochs_completed} of {total if total is not None else '?'}"
        stopped = self.exp.stopped_early
        return f"{text} ({stopped})" if stopped else text

    def metric(self, key: str) -> float | None:
        value = (self.best or {}).get(key)
        return float(value) if _finite(value) else None


# -- which runs -------------------------------------------------------------------------------


def read_experiments(paths: Iterable[str | Path]) -> list[Experiment]:
    """Read each directory; refuse one named twice (it would show as two identical runs)."""
    paths = [Path(p).expanduser() for p in paths]
    _refuse_repeats([str(p) for p in paths], [_identity(p) for p in paths])
    return [read_experiment(p) for p in paths]


def check_distinct(experiments: Sequence[Experiment]) -> None:
    """The same refusal for experiments read elsewhere (the Python API)."""
    _refuse_repeats([str(e.path) for e in experiments], [_identity(e.path) for e in experiments])


def _identity(path: Path) -> str:
    return str(path.resolve()) if path.exists() else str(path.absolute())


def _refuse_repeats(shown: list[str], keys: list[str]) -> None:
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            a, b = shown[first[key]], shown[i]
            same = f"{a!r}" if a == b else f"{a!r} and {b!r} (the same directory)"
            raise CompareError(
                f"experiment directory {same} given twice: name each run once to compare runs"
            )
        first[key] = i


# -- per-run numbers --------------------------------------------------------------------------


def summarize(experiments: Sequence[Experiment], labels: Sequence[str]) -> list[RunSummary]:
    """One :class:`RunSummary` per run, in the order given."""
    return [
        RunSummary(
            label=label,
            exp=exp,
            best=best_val_row(exp),
            images_per_s=_mean(r.get("images_per_s") for r in exp.epoch_stats),
            seconds_per_epoch=seconds_per_epoch(exp),
            final_losses=final_losses(exp),
        )
        for exp, label in zip(experiments, labels, strict=True)
    ]


def best_val_row(exp: Experiment) -> dict[str, Any] | None:
    """The validation row of the epoch ``best.pt`` holds (lowest val L1 if none was recorded)."""
    rows = {r["epoch"]: r for r in exp.val_metrics}
    best = exp.val_best.get("epoch") if exp.val_best else None
    if best in rows:
        return dict(rows[best])
    return records.best_row(exp.val_metrics)


def seconds_per_epoch(exp: Experiment) -> float | None:
    """Mean training seconds per epoch: epoch_stats.json, else the trainer's timing.json."""
    mean = _mean(r.get("seconds") for r in exp.epoch_stats)
    return mean if mean is not None else _mean(e.get("seconds") for e in exp.epoch_times)


def final_losses(exp: Experiment) -> dict[str, float]:
    """Each loss's mean weighted value over the last epoch it logged (one step is too noisy)."""
    out = {}
    for name, series in exp.losses.items():
        epochs = series.epoch[np.isfinite(series.epoch)]
        if not epochs.size:
            continue
        last = math.floor(float(epochs.max()))
        values = series.weighted[np.floor(series.epoch) == last]
        finite = values[np.isfinite(values)]
        if finite.size:
            out[name] = float(finite.mean())
    return out


def loss_names(summaries: Sequence[RunSummary]) -> list[str]:
    """Every loss any run logged, in first-seen order."""
    names: dict[str, None] = {}
    for s in summaries:
        names.update(dict.fromkeys(s.exp.losses))
    return list(names)


def best_runs(summaries: Sequence[RunSummary]) -> dict[str, set[int]]:
    """Per metric, the indices of the runs with the best value (lowest L1, highest PSNR/SSIM)."""
    out: dict[str, set[int]] = {}
    for key, higher in HIGHER_IS_BETTER.items():
        values = {i: v for i, s in enumerate(summaries) if (v := s.metric(key)) is not None}
        if values:
            target = max(values.values()) if higher else min(values.values())
            out[key] = {i for i, v in values.items() if v == target}
    return out


def missing_validation(summaries: Sequence[RunSummary]) -> list[str]:
    """A note per run without validation rows: it is compared on losses and speed alone."""
    return [
        f"{s.label}: no validation recorded ({records.VAL_METRICS_FILE} missing or empty); "
        "compared on losses and speed only"
        for s in summaries
        if not s.exp.val_metrics
    ]


def summary_line(s: RunSummary) -> str:
    """One terminal line per run, for the commands' output."""
    if s.best:
        metrics = ", ".join(f"{name} {fmt(s.metric(key))}" for name, key in VAL_COLUMNS.items())
        best = f"best epoch {s.best['epoch']} (val {metrics})"
    else:
        best = "no validation"
    speed = f"{fmt(s.images_per_s, 3)} images/s" if s.images_per_s is not None else "speed unknown"
    return f"{s.label}: {best}; epochs {s.epochs_text}; {speed}"


# -- validation curves ------------------------------------------------------------------------


def val_overlay(summaries: Sequence[RunSummary]) -> list[tuple[Pane, dict[int, tuple[list, list]]]]:
    """Per validation metric (L1, PSNR, SSIM): its pane and ``{run index: (epochs, values)}``.

    Runs without validation rows have no entry; the run index picks the colour.
    """
    out = []
    for pane in VAL_METRICS.panes:
        key = VAL_COLUMNS[pane.series[0]]
        series = {
            i: ([r["epoch"] for r in s.exp.val_metrics], [r.get(key) for r in s.exp.val_metrics])
            for i, s in enumerate(summaries)
            if s.exp.val_metrics
        }
        out.append((pane, series))
    return out


# -- config differences -----------------------------------------------------------------------


NOT_SETTINGS = ("train.resume.",)  # how a session started, not what the model is


def config_differences(experiments: Sequence[Experiment]) -> list[tuple[str, list[str]]]:
    """``(dotted key, value per run as JSON)`` for every key whose value is not the same in all.

    A key one config lacks shows as :data:`ABSENT`; a run without a readable
    config shows :data:`UNKNOWN` and takes no part in deciding what differs.
    ``train.resume.*`` keys say how a session was started, not what was trained:
    they are left out.
    """
    flat = [_settings(e.config) if e.config is not None else None for e in experiments]
    known = [f for f in flat if f is not None]
    keys: dict[str, None] = {}
    for f in known:
        keys.update(dict.fromkeys(f))
    out = []
    for key in keys:
        values = [_show(f, key) for f in known]
        if len(set(values)) > 1:
            out.append((key, [UNKNOWN if f is None else _show(f, key) for f in flat]))
    return out


def _settings(config: Any) -> dict[str, Any]:
    """The config's dotted keys, less those that only say how a session started."""
    return {k: v for k, v in flatten(config).items() if not k.startswith(NOT_SETTINGS)}


def _show(flat: dict[str, Any], key: str) -> str:
    return json.dumps(flat[key], sort_keys=True) if key in flat else ABSENT


# -- formatting -------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for a table cell; ``-`` when unknown."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _finite(value: Any) -> bool:
    return is_number(value, finite=True)


def _mean(values: Iterable[Any]) -> float | None:
    good = [float(v) for v in values if _finite(v)]
    return sum(good) / len(good) if good else None
