"""Read a finished (or crashed) experiment directory into one plain structure.

Replay and report both start from :func:`read_experiment`. Every piece is
optional, because a crashed run or one trained with ``save.log_losses`` off
may lack any of them; what could not be read is listed in
:attr:`Experiment.problems` (with the reason) instead of raising, so a review
always shows what *is* there and says what it skipped.

The loss log comes from the one tolerant reader,
:func:`nectargan.losses.loss_log.read_log_arrays` (every good segment kept,
every skipped one listed; each segment from its binary column file when that is
current, so a 1M-step log is not 16M JSON numbers to parse), and every file name from
:mod:`nectargan.experiment_layout`; neither imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nectargan.errors import ExperimentUserError
from nectargan.experiment_layout import (
    CHECKPOINT_DIR,
    CHECKPOINT_RE,
    CONFIG_FILE,
    EXAMPLE_RE,
    EXAMPLES_DIR,
    INTERRUPTED,
    LOSS_LOG_DIR,
    LOSS_LOG_FIELDS,
    LOSS_LOG_INDEX,
    METRICS_FILE,
    RESUME_CONFIG_RE,
    TEST_DIR,
    TIMING_FILE,
)
from nectargan.losses.loss_log import SegmentArrays, read_log_arrays
from nectargan.review.loss_series import LossSeries
from nectargan.runs import records
from nectargan.runs.status import RunStatus, read_status
from nectargan.utils import rows_json
from nectargan.utils.durations import format_duration
from nectargan.utils.json_files import read_json_noting
from nectargan.utils.numbers import is_number

# The loss log's names, under the names this module has always exported.
INDEX_NAME, SEGMENT_DIR, FIELDS = LOSS_LOG_INDEX, LOSS_LOG_DIR, LOSS_LOG_FIELDS


class ExperimentError(ExperimentUserError):
    """The path is not something a review can read; the message says why."""


@dataclass
class Segment:
    """What one loss-log segment contributed (for the timing summary)."""

    number: int
    run: int
    records: int
    first_epoch: float | None
    last_epoch: float | None
    written: datetime


@dataclass
class ExampleEpoch:
    """The example triplets saved after ``epoch`` completed epochs."""

    epoch: int
    images: list[Path]


@dataclass
class TestResult:
    """One ``nectargan test`` output folder: its metrics file and triplets."""

    folder: Path
    report: dict[str, Any]
    images: list[Path]

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.report.get("metrics") or {})


@dataclass
class Experiment:
    """Everything a review shows; fields are empty when the run did not produce them."""

    path: Path
    config: dict[str, Any] | None = None
    config_files: list[Path] = field(default_factory=list)
    losses: dict[str, LossSeries] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    examples: list[ExampleEpoch] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    checkpoints: dict[int, Path] = field(default_factory=dict)
    interrupted_checkpoint: Path | None = None
    status: RunStatus | None = None  # run_status.json; None for runs made before records
    epoch_times: list[dict[str, Any]] = field(default_factory=list)
    val_metrics: list[dict[str, Any]] = field(default_factory=list)  # val_metrics.json rows
    val_best: dict[str, Any] | None = None  # the epoch best.pt holds
    val_split: str | None = None
    epoch_stats: list[dict[str, Any]] = field(default_factory=list)  # lr, throughput per epoch
    run_info: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The directory name, ``<experiment>_v<N>``: also the default Visdom env."""
        return self.path.name

    @property
    def total_epochs(self) -> int | None:
        if self.status is not None and self.status.total_epochs:
            return self.status.total_epochs
        train = (self.config or {}).get("train") or {}
        try:
            return int(train["epochs"]) + int(train["epochs_decay"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def epochs_completed(self) -> int:
        """The run's own count (its status record); for a run without one, the highest
        epoch with a checkpoint or examples (files written only at epoch ends)."""
        if self.status is not None:
            return self.status.epochs_completed
        return max([*self.checkpoints, *(e.epoch for e in self.examples)], default=0)

    @property
    def stopped_early(self) -> str | None:
        """``stopped`` for a run that ended before its last epoch (interrupted, crashed,
        disk full), ``running`` while it trains, None when it finished. From the run's
        status record; a run without one is guessed from a left-over ``interrupted.pt``."""
        if self.status is not None:
            return {"finished": None, "running": "running"}.get(self.status.state, "stopped")
        total = self.total_epochs
        if self.interrupted_checkpoint is not None and (
            total is None or self.epochs_completed < total
        ):
            return "stopped"
        return None

    @property
    def n_records(self) -> int:
        return sum(len(s) for s in self.losses.values())

    def tags(self) -> list[str]:
        """Loss tags in first-seen order (``G`` before ``D`` as the trainer registers them)."""
        seen: dict[str, None] = {}
        for series in self.losses.values():
            for tag in series.tags or [""]:
                seen.setdefault(tag, None)
        return list(seen)


def read_experiment(path: str | Path) -> Experiment:
    """Read whatever ``path`` holds; raise only when it is no experiment directory at all."""
    directory = Path(path).expanduser()
    if not directory.exists():
        raise ExperimentError(f"experiment directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise ExperimentError(f"experiment directory {str(directory)!r} is not a directory")
    exp = Experiment(path=directory)
    _read_config(exp)
    _read_loss_log(exp)
    _read_examples(exp)
    _read_tests(exp)
    _read_checkpoints(exp)
    _read_timing(exp)
    _read_run_metrics(exp)
    exp.status = read_status(directory)
    if not (exp.config_files or exp.losses or exp.examples or exp.checkpoints or exp.tests):
        raise ExperimentError(
            f"{str(directory)!r} is not a NectarGAN experiment directory: no config.json, "
            "loss_log.json, examples/ or checkpoints/ in it"
        )
    return exp


# -- config -----------------------------------------------------------------------------


def _read_config(exp: Experiment) -> None:
    """``config.json`` and, after resumes, ``config.resumeN.json``: the last one is effective."""
    files = [exp.path / CONFIG_FILE] if (exp.path / CONFIG_FILE).is_file() else []
    resumes = sorted(
        (int(m.group(1)), p)
        for p in exp.path.glob("config.resume*.json")
        if (m := RESUME_CONFIG_RE.match(p.name))
    )
    files += [p for _, p in resumes]
    exp.config_files = files
    for candidate in reversed(files):
        data = read_json_noting(candidate, exp.problems, "config", _rel(candidate))
        if isinstance(data, dict):
            exp.config = data
            return
    if not files:
        exp.problems.append("no config.json: the config is unknown")


# -- loss log ---------------------------------------------------------------------------


def _read_loss_log(exp: Experiment) -> None:
    files = read_log_arrays(exp.path)
    exp.problems.extend(files.problems)
    if not files.found:
        exp.problems.append("no loss log (loss_log.json): the run logged no losses")
        return
    index = files.index or {}
    meta = index.get("losses") or {}
    runs = index.get("runs")
    exp.runs = [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []
    for name, info in meta.items():
        exp.losses[name] = LossSeries(name, _tags(name, info))
    for segment in files.segments:
        for name, cols in segment.losses.items():
            series = exp.losses.setdefault(name, LossSeries(name, _tags(name, meta.get(name))))
            series.extend([cols[f] for f in FIELDS])  # joined when first read
        exp.segments.append(_segment_summary(segment))
    _check_counts(exp, meta)


def _segment_summary(segment: SegmentArrays) -> Segment:
    span = segment.epoch_range()
    written = datetime.fromtimestamp(segment.path.stat().st_mtime, UTC)
    first, last = span if span is not None else (None, None)
    return Segment(segment.number, segment.run, segment.records, first, last, written)


def _check_counts(exp: Experiment, meta: dict[str, Any]) -> None:
    """Say how many records the index promised that no readable segment holds."""
    short = []
    for name, info in meta.items():
        promised = info.get("records") if isinstance(info, dict) else None
        have = len(exp.losses[name]) if name in exp.losses else 0
        if isinstance(promised, int) and promised > have:
            short.append(f"{name} {have} of {promised}")
    if short:
        exp.problems.append(
            "records lost with the skipped segment(s), readable of logged: " + ", ".join(short)
        )


def _tags(name: str, info: Any) -> list[str]:
    """Tags from the index; without them (index lost), the trainer's ``G_``/``D_`` naming."""
    tags = info.get("tags") if isinstance(info, dict) else None
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return list(tags)
    prefix = name.split("_", 1)[0]
    return [prefix] if prefix in ("G", "D") else []


# -- images, tests, checkpoints ---------------------------------------------------------


def _read_examples(exp: Experiment) -> None:
    folder = exp.path / EXAMPLES_DIR
    if not folder.is_dir():
        return
    by_epoch: dict[int, list[tuple[int, Path]]] = {}
    for p in folder.iterdir():
        m = EXAMPLE_RE.match(p.name)
        if m and p.is_file():
            by_epoch.setdefault(int(m.group(1)), []).append((int(m.group(2)), p))
    exp.examples = [
        ExampleEpoch(epoch, [p for _, p in sorted(items)])
        for epoch, items in sorted(by_epoch.items())
    ]


def _read_tests(exp: Experiment) -> None:
    folder = exp.path / TEST_DIR
    if not folder.is_dir():
        return
    for metrics in sorted(folder.rglob(METRICS_FILE)):
        report = read_json_noting(metrics, exp.problems, "test metrics", _rel(metrics))
        if not isinstance(report, dict):
            continue
        images = sorted(p for p in metrics.parent.glob("*.png") if not p.name.startswith("."))
        exp.tests.append(TestResult(metrics.parent, report, images))


def _read_timing(exp: Experiment) -> None:
    """Epoch durations the trainer measured (``timing.json``); absent in older or crashed runs."""
    try:
        text = (exp.path / TIMING_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return
    epochs = rows_json.load_rows(text, "epochs").get("epochs")  # a torn append keeps its rows
    if isinstance(epochs, list):
        exp.epoch_times = [
            e for e in epochs if isinstance(e, dict) and _is_number(e.get("seconds"))
        ]


def _read_run_metrics(exp: Experiment) -> None:
    """Validation rows, per-epoch lr/throughput and run info (nectargan/records.py)."""
    exp.val_metrics = records.read_val_metrics(exp.path)
    exp.val_best = records.read_val_best(exp.path)
    exp.val_split = records.val_split(exp.path)
    exp.epoch_stats = records.read_epoch_stats(exp.path)
    exp.run_info = records.read_run_info(exp.path)
    for name, rows in (
        (records.VAL_METRICS_FILE, exp.val_metrics),
        (records.EPOCH_STATS_FILE, exp.epoch_stats),
    ):
        if (exp.path / name).is_file() and not rows:
            exp.problems.append(f"{name}: no readable rows, skipped")


def _is_number(value: Any) -> bool:
    return is_number(value, finite=True)


def _read_checkpoints(exp: Experiment) -> None:
    folder = exp.path / CHECKPOINT_DIR
    if not folder.is_dir():
        return
    found = {int(m.group(1)): p for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))}
    exp.checkpoints = dict(sorted(found.items()))
    if (folder / INTERRUPTED).is_file():
        exp.interrupted_checkpoint = folder / INTERRUPTED


# -- summaries --------------------------------------------------------------------------


def status_line(exp: Experiment) -> str:
    """Completed, or how far a stopped run got (checkpoints and examples mark epoch ends)."""
    total, done = exp.total_epochs, exp.epochs_completed
    of = f" of {total}" if total else ""
    if exp.status is not None:
        return _recorded_status_line(exp.status, done, of, exp)
    last_epoch = max((s.last_epoch for s in exp.segments if s.last_epoch is not None), default=None)
    partial = ""
    if last_epoch is not None and math.floor(last_epoch) >= done:
        partial = f"; losses logged into epoch {math.floor(last_epoch) + 1}"
    if exp.interrupted_checkpoint is not None and (total is None or done < total):
        return f"stopped early (interrupted.pt): {done}{of} epoch(s) completed{partial}"
    if total is not None and done >= total:
        return f"completed: {done}{of} epoch(s)"
    return f"incomplete: {done}{of} epoch(s) completed{partial}"


def _recorded_status_line(status: RunStatus, done: int, of: str, exp: Experiment) -> str:
    """The status line from the run's own record: its state, how far, and why it stopped."""
    sessions = len(status.sessions)
    resumed = f", {sessions} sessions" if sessions > 1 else ""
    if status.state == "finished":
        return f"completed: {done}{of} epoch(s){resumed}"
    if status.state == "running":
        return f"running (pid {status.pid}): {done}{of} epoch(s) completed{resumed}"
    why = f"{status.label}: {status.reason}" if status.reason else status.label
    return f"stopped early ({why}): {done}{of} epoch(s) completed{resumed}"


def timing_lines(exp: Experiment) -> list[str]:
    """The run's duration as the trainer measured it, then each session's start.

    One duration only (the console prints the same): file times would give a
    second one that disagrees with it by the validation and start-up time.
    """
    lines = [_measured_epochs(exp.epoch_times)] if exp.epoch_times else []
    for number, run in enumerate(exp.runs, start=1):
        segs = [s for s in exp.segments if s.run == number]
        started = _parse_time(run.get("started")) if isinstance(run, dict) else None
        lines.append(_run_timing(number, started, segs))
    orphans = [s for s in exp.segments if not 1 <= s.run <= len(exp.runs)]
    if orphans and not exp.runs:
        lines.append(_run_timing(1, None, orphans))
    if not lines:
        lines.append("no timing: the loss log has no runs")
    return lines


def _measured_epochs(epochs: list[dict[str, Any]]) -> str:
    """The run's duration (:func:`nectargan.runs.records.run_seconds`) and its pace."""
    total = records.run_seconds(epochs) or 0.0
    steps = sum(int(e.get("steps") or 0) for e in epochs)
    text = (
        f"measured by the trainer: {len(epochs)} epoch(s) in {format_duration(total)}, "
        f"{format_duration(total / len(epochs))} per epoch on average"
    )
    if steps and total > 0:
        text += f" ({steps / total:.2f} it/s)"
    return text


def _run_timing(number: int, started: datetime | None, segs: list[Segment]) -> str:
    """When a session started and what it logged; its duration is the measured one above."""
    label = "run 1" if number == 1 else f"run {number} (resume)"
    start_text = started.strftime("%Y-%m-%d %H:%M:%S UTC") if started else "start unknown"
    if not segs:
        return f"{label}: started {start_text}; no records written"
    iterations = sum(s.records for s in segs)
    return f"{label}: started {start_text}, {iterations} iteration(s) logged{_span(segs)}"


def _span(segs: list[Segment]) -> str:
    """`` in epochs 3-5`` (1-based, as the trainer prints them) covered by ``segs``."""
    firsts = [s.first_epoch for s in segs if s.first_epoch is not None]
    lasts = [s.last_epoch for s in segs if s.last_epoch is not None]
    if not firsts or not lasts:
        return ""
    a, b = math.floor(min(firsts)) + 1, math.floor(max(lasts)) + 1
    return f" in epoch {a}" if a == b else f" in epochs {a}-{b}"


# -- small helpers ----------------------------------------------------------------------


def _rel(path: Path) -> str:
    return "/".join(path.parts[-2:]) if path.parent.name == SEGMENT_DIR else path.name


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
