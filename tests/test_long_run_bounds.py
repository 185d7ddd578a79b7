"""What a run of days keeps and writes stays bounded (the figures: bench/soak.py).

Each test would have caught one growth bench/soak.py found: a per-epoch
dashboard panel holding one point per epoch forever, and the per-epoch run
files (``val_metrics.json``, ``epoch_stats.json``, ``timing.json``) rewritten
whole every epoch, O(epochs) per epoch.
"""

from __future__ import annotations

import json
import math
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from nectargan.runs import records as rm
from nectargan.trainers import timing
from nectargan.utils import rows_json
from nectargan.visualizer.visdom.engine import Engine
from nectargan.visualizer.visdom.panels import LR, PANELS, VAL_METRICS
from nectargan.visualizer.visdom.windows import PanelWindow

EPOCHS = 2000


# -- dashboard panels ----------------------------------------------------------------------


def test_panel_window_stays_bounded_over_a_long_run() -> None:
    panel = PanelWindow(LR, max_points=50)
    for epoch in range(1, EPOCHS + 1):
        panel.add(float(epoch), {"lr_G": 1.0, "lr_D": float(epoch)})
    for name, (xs, _ys) in panel.series().items():
        assert 25 <= len(xs) <= 50, name
        assert xs == sorted(xs) and xs[0] < 50 and xs[-1] > EPOCHS - 50  # still the whole run
    xs, ys = panel.series()["lr_D"]
    assert all(math.isclose(x, y) for x, y in zip(xs, ys, strict=True))  # means of x and of y
    assert len(panel.body("env")) < 50 * 2 * 60  # what is sent stays bounded too


def test_panel_points_are_exact_below_the_bound_and_replace_by_epoch() -> None:
    panel = PanelWindow(VAL_METRICS, max_points=50)
    for epoch in (1, 2, 3, 2):
        panel.add(float(epoch), {"l1": epoch / 10})
    assert panel.series()["l1"] == ([1.0, 2.0, 3.0], [0.1, 0.2, 0.3])


def test_a_thinned_panel_keeps_gaps_out_of_the_means_and_ignores_replays() -> None:
    panel = PanelWindow(VAL_METRICS, max_points=4)
    for epoch, l1 in enumerate((2.0, math.nan, math.nan, math.nan, 7.0, 9.0), start=1):
        panel.add(float(epoch), {"l1": l1})
    panel.add(3.0, {"l1": 100.0})  # an epoch re-sent after thinning: ignored
    xs, ys = panel.series()["l1"]
    assert xs == [1.5, 3.5, 5.5] and ys == [2.0, None, 8.0]


def test_engine_bounds_every_panel_with_its_max_points() -> None:
    engine = Engine(transport=None, env="e", max_points=40)  # type: ignore[arg-type]
    panels = [w for w in engine.windows.values() if isinstance(w, PanelWindow)]
    assert len(panels) == len(PANELS) and all(p.max_points == 40 for p in panels)


# -- per-epoch run files -------------------------------------------------------------------


class CountingFile:
    """A binary file that counts the bytes read from and written to it."""

    def __init__(self, handle: Any, counts: dict[str, int]) -> None:
        self._handle, self._counts = handle, counts

    def read(self, *args: Any) -> bytes:
        data = self._handle.read(*args)
        self._counts["read"] += len(data)
        return data

    def write(self, data: bytes) -> int:
        self._counts["written"] += len(data)
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


@pytest.fixture
def io_counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Bytes that rows_json reads and writes from here on."""
    counts = {"read": 0, "written": 0}

    def counting_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> CountingFile:
        return CountingFile(open(path, mode, *args, **kwargs), counts)

    monkeypatch.setattr(rows_json, "open", counting_open, raising=False)
    return counts


def stats_row(epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "lr_G": 2e-4, "lr_D": 2e-4, "images": 32, "seconds": 0.5}


def test_an_epoch_row_costs_the_same_however_long_the_file(
    tmp_path: Path, io_counts: dict[str, int]
) -> None:
    rm.write_epoch_stats(tmp_path, [stats_row(e) for e in range(1, EPOCHS + 1)])
    size = (tmp_path / rm.EPOCH_STATS_FILE).stat().st_size
    assert size > 2 * rows_json.TAIL_WINDOW  # the file is longer than what one append reads
    rm.append_epoch_stats(tmp_path, stats_row(EPOCHS + 1))
    assert io_counts["written"] < 200  # the new row and the tail, not the file
    assert io_counts["read"] <= rows_json.TAIL_WINDOW
    rows = rm.read_epoch_stats(tmp_path)
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 2))


def test_val_metrics_append_keeps_strict_json_and_the_best(tmp_path: Path) -> None:
    rm.write_val_metrics(tmp_path, [], "val", None)
    for epoch, l1 in ((1, 0.3), (2, 0.2), (3, 0.25)):
        best = {"epoch": 2, "l1": 0.2} if epoch >= 2 else {"epoch": 1, "l1": 0.3}
        rm.append_val_metrics(tmp_path, {"epoch": epoch, "l1": l1, "psnr": math.inf}, "val", best)
    data = json.loads((tmp_path / rm.VAL_METRICS_FILE).read_text())
    assert data["split"] == "val" and data["best"] == {"epoch": 2, "l1": 0.2}
    assert [r["l1"] for r in data["rows"]] == [0.3, 0.2, 0.25]
    assert data["rows"][0]["psnr"] is None  # non-finite: null, the file stays strict JSON


def test_a_file_in_the_old_layout_is_rewritten_once_then_appended(tmp_path: Path) -> None:
    old = {"format": rm.STATS_FORMAT, "version": 1, "rows": [stats_row(1), stats_row(2)]}
    (tmp_path / rm.EPOCH_STATS_FILE).write_text(json.dumps(old, indent=1) + "\n")
    assert not rows_json.append_row(tmp_path / rm.EPOCH_STATS_FILE, stats_row(3))
    rm.append_epoch_stats(tmp_path, stats_row(3))
    assert rows_json.append_row(tmp_path / rm.EPOCH_STATS_FILE, stats_row(4))
    assert [r["epoch"] for r in rm.read_epoch_stats(tmp_path)] == [1, 2, 3, 4]


def test_a_torn_append_keeps_the_rows_before_it(tmp_path: Path) -> None:
    rm.write_epoch_stats(tmp_path, [stats_row(e) for e in range(1, 6)])
    path = tmp_path / rm.EPOCH_STATS_FILE
    text = path.read_text()
    path.write_text(text[: text.rindex("\n]") - 7])  # a crash in the middle of the last row
    assert [r["epoch"] for r in rm.read_epoch_stats(tmp_path)] == [1, 2, 3, 4]
    path.write_text(text[: text.rindex("\n]")] + ",]}\n")  # one byte of an append landed
    assert [r["epoch"] for r in rm.read_epoch_stats(tmp_path)] == [1, 2, 3, 4, 5]
    rm.append_epoch_stats(tmp_path, stats_row(6))  # the next append repairs the file
    assert json.loads(path.read_text())["rows"][-1]["epoch"] == 6


def test_the_review_reader_keeps_the_rows_of_a_torn_timing_file(tmp_path: Path) -> None:
    from nectargan.review.experiment_reader import read_experiment

    (tmp_path / "config.json").write_text("{}")
    entries = [{"epoch": e, "seconds": 1.0, "steps": 8, "finished": "x"} for e in range(1, 6)]
    path = timing.write_timing(tmp_path, entries)
    text = path.read_text()
    path.write_text(text[: text.rindex("\n]") - 7])  # a crash in the middle of the last row
    assert [e["epoch"] for e in read_experiment(tmp_path).epoch_times] == [1, 2, 3, 4]


def test_timing_record_neither_reads_nor_rewrites_the_earlier_epochs(
    tmp_path: Path, io_counts: dict[str, int]
) -> None:
    entries = [{"epoch": e, "seconds": 1.0, "steps": 8, "finished": "x"} for e in range(1, 2001)]
    timing.write_timing(tmp_path, entries)
    timing.record_epoch(tmp_path, 2001, 1.25, 8)
    assert io_counts["written"] < 200 and io_counts["read"] <= rows_json.TAIL_WINDOW
    epochs = timing.read_timing(tmp_path)
    assert len(epochs) == 2001 and epochs[-1]["seconds"] == 1.25


def test_a_row_a_full_disk_refused_is_written_with_the_next_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nectargan.trainers.run_monitor import RunMonitor

    monitor = RunMonitor.__new__(RunMonitor)  # only what _append_files uses
    monitor.experiment_dir, monitor.validator, monitor.best = tmp_path, None, None
    monitor._unwritten = deque()
    real = rm.append_epoch_stats

    def full_disk(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rm, "append_epoch_stats", full_disk)
    with pytest.raises(OSError):
        monitor._append_files(stats_row(1), None)
    monkeypatch.setattr(rm, "append_epoch_stats", real)
    monitor._append_files(stats_row(2), None)
    assert [r["epoch"] for r in rm.read_epoch_stats(tmp_path)] == [1, 2]
    assert not monitor._unwritten
