"""The Run page's loss charts read through the column files draw what the JSON lists drew.

The reference is the Run page's former reader, kept here: every segment's JSON
parsed into per-loss Python lists, weighted as ``raw * weight`` (None when either
is null) and cut to bucket means with Python's ``sum``. The charts must be equal
to it (the steps exactly, the means to float rounding: the page sums a bucket with
numpy's ``reduceat``), whether the column files are current, missing or stale.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from nectargan import experiment_layout as layout
from nectargan.losses import loss_columns
from nectargan.losses.loss_log import LossLog
from nectargan.toolbox.loss_curves import CHART_POINTS, LossCurve
from nectargan.toolbox.run_watch import RunWatch


def _records(start: int, n: int, seed: int, *, gap_steps: bool = False) -> dict[str, dict]:
    """Two losses: NaN and infinities in ``raw`` (null in the JSON), a scheduled weight for one; ``gap_steps``:
    steps that skip (not one after another), so the chart must look each one up."""
    rng = np.random.default_rng(seed)
    raw = rng.random(n).tolist()
    raw[1], raw[5], raw[9] = math.nan, math.inf, -math.inf
    steps = [start + 2 * i for i in range(n)] if gap_steps else list(range(start, start + n))
    epochs = [s / 1000 for s in steps]
    scheduled = [10.0 * (1 - i / n) for i in range(n)]
    return {
        "G_L1": {"epoch": epochs, "step": steps, "raw": raw, "weight": scheduled},
        "D_fake": {"epoch": epochs, "step": steps, "raw": raw[::-1], "weight": [0.5] * n},
    }


def _write_log(exp: Path, sizes: list[int]) -> None:
    log = LossLog(exp)
    log.describe_loss("G_L1", {"tags": ["G"], "weight": 10.0, "schedule": None})
    log.describe_loss("D_fake", {"tags": ["D"], "weight": 0.5, "schedule": None})
    start = 0
    for seed, n in enumerate(sizes):
        log.write_segment(_records(start, n, seed, gap_steps=seed == 1))
        start += 2 * n
    log.write_index()


def _reference_charts(exp: Path) -> dict[str, dict]:
    """What the Run page drew before column files: the lists from the JSON, bucket means."""
    steps: dict[str, list] = {}
    values: dict[str, list] = {}
    for path in sorted((exp / layout.LOSS_LOG_DIR).glob("*.json")):
        if not layout.SEGMENT_RE.match(path.name):
            continue
        for loss, cols in json.loads(path.read_text())["losses"].items():
            steps.setdefault(loss, []).extend(int(s) for s in cols["step"])
            values.setdefault(loss, []).extend(
                None if r is None or w is None else float(r) * float(w)
                for r, w in zip(cols["raw"], cols["weight"], strict=True)
            )
    return {loss: _reference_chart(steps[loss], values[loss]) for loss in steps}


def _reference_chart(steps: list[int], values: list, points: int = CHART_POINTS) -> dict:
    n = len(steps)
    if n <= points:
        return {"x": list(steps), "y": list(values)}
    xs, ys = [], []
    for b in range(points):
        lo, hi = b * n // points, (b + 1) * n // points
        finite = [v for v in values[lo:hi] if v is not None]
        xs.append(steps[(lo + hi - 1) // 2])
        ys.append(sum(finite) / len(finite) if finite else None)
    return {"x": xs, "y": ys}


def _assert_same(got: dict[str, dict], want: dict[str, dict]) -> None:
    """Same losses, same steps, and means equal to float rounding (None where none)."""
    assert got.keys() == want.keys()
    for name in want:
        assert got[name]["x"] == want[name]["x"], name
        assert len(got[name]["y"]) == len(want[name]["y"]), name
        for a, b in zip(got[name]["y"], want[name]["y"], strict=True):
            assert (a is None) == (b is None), (name, a, b)
            if a is not None:
                assert a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (name, a, b)


def _charts(exp: Path) -> dict[str, dict]:
    losses = RunWatch(exp).read()["losses"]
    return {name: {"x": c["x"], "y": c["y"]} for name, c in losses.items()}


def _column_files(exp: Path) -> list[Path]:
    return sorted((exp / layout.LOSS_LOG_DIR).glob("*" + loss_columns.SUFFIX))


def test_charts_from_column_files_equal_the_json_lists(tmp_path):
    exp = tmp_path / "run"
    _write_log(exp, [1500, 700, 1234])
    assert len(_column_files(exp)) == 3
    charts = _charts(exp)
    _assert_same(charts, _reference_charts(exp))
    assert len(charts["G_L1"]["x"]) == CHART_POINTS and None not in charts["G_L1"]["y"]
    assert RunWatch(exp).read()["losses"]["G_L1"]["tags"] == ["G"]


def test_a_short_log_is_drawn_record_for_record_with_its_gaps(tmp_path):
    exp = tmp_path / "run"
    _write_log(exp, [30, 20])
    charts = _charts(exp)
    _assert_same(charts, _reference_charts(exp))
    assert charts["G_L1"]["y"][1] is None and charts["G_L1"]["x"][30:32] == [60, 62]


def test_a_missing_or_stale_column_file_reads_the_json_and_draws_the_same(tmp_path):
    exp = tmp_path / "run"
    _write_log(exp, [1500, 700, 1234])
    first, second, _ = _column_files(exp)
    first.unlink()  # a run from before column files
    segment = exp / layout.LOSS_LOG_DIR / "000002.json"
    data = json.loads(segment.read_text())
    data["losses"]["G_L1"]["raw"][100] = 123.0  # the segment changed after its column file
    segment.write_text(json.dumps(data))
    stale = second.read_bytes()
    _assert_same(_charts(exp), _reference_charts(exp))
    # read, not written: writing in the run's folder would move the signature it is watched by
    assert not first.exists() and second.read_bytes() == stale


def test_new_segments_are_added_and_a_rewritten_one_rebuilds(tmp_path):
    exp = tmp_path / "run"
    _write_log(exp, [900, 500])
    watch = RunWatch(exp)
    assert watch.read()["losses"]["G_L1"]["x"] == _reference_charts(exp)["G_L1"]["x"]
    log = LossLog(exp)
    log.write_segment(_records(2800, 800, 7))
    os.utime(exp / layout.LOSS_LOG_DIR, ns=(1, 1))  # an old folder time: not racy
    grown = watch.read()["losses"]
    _assert_same({n: {"x": c["x"], "y": c["y"]} for n, c in grown.items()}, _reference_charts(exp))
    segment = exp / layout.LOSS_LOG_DIR / "000001.json"
    data = json.loads(segment.read_text())
    data["losses"]["D_fake"]["raw"] = [1.0] * 900  # a resume rewound and rewrote it
    segment.write_text(json.dumps(data))
    os.utime(exp / layout.LOSS_LOG_DIR, ns=(2, 2))
    rebuilt = watch.read()["losses"]
    _assert_same(
        {n: {"x": c["x"], "y": c["y"]} for n, c in rebuilt.items()}, _reference_charts(exp)
    )


def test_consecutive_steps_are_not_kept_but_others_are():
    curve = LossCurve(["G"])
    curve.extend(np.arange(10, 20), np.ones(10))
    curve.extend(np.array([20, 25, 30]), np.array([2.0, math.nan, 4.0]))
    assert curve._chunks[0].steps is None and list(curve._chunks[1].steps) == [20, 25, 30]
    assert curve.chart(points=5) == {"x": [10, 13, 15, 18, 25], "y": [1.0, 1.0, 1.0, 1.0, 3.0]}
