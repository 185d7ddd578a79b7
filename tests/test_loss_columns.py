"""The loss log's column files: what the Review page reads instead of 16M JSON numbers.

Each test compares against the full parse of the JSON segments (the record), so
the quick path can never draw other values than the slow one did.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from nectargan import experiment_layout as layout
from nectargan.losses import loss_columns, loss_log
from nectargan.losses.loss_log import LossLog, read_log_arrays, read_log_files
from nectargan.review.experiment_reader import read_experiment
from nectargan.toolbox.review_data import loss_curves

FIELDS = layout.LOSS_LOG_FIELDS


def segment_cols(start: int, n: int, seed: int, *, schedule: bool = False) -> dict[str, list]:
    """One loss's records: gaps (NaN, inf: null in the JSON), a scheduled or constant weight."""
    rng = np.random.default_rng(seed)
    raw = rng.random(n).tolist()
    raw[3], raw[7], raw[11] = math.nan, math.inf, -math.inf
    weight = [100.0 * (1 - i / n) for i in range(n)] if schedule else [100.0] * n
    return {
        "epoch": [(start + i) / 1000 for i in range(n)],
        "step": list(range(start, start + n)),
        "raw": raw,
        "weight": weight,
    }


def write_log(folder: Path, segments: int = 3, n: int = 5000) -> Path:
    log = LossLog(folder)
    log.describe_loss("G_L1", {"tags": ["G"], "weight": 100.0, "schedule": None})
    log.describe_loss("D_real", {"tags": ["D"], "weight": 1.0, "schedule": None})
    for k in range(segments):
        every_other = segment_cols(2 * k * n, n, k + 10)
        every_other["step"] = [s * 2 for s in every_other["step"]]  # loss_log_every=2: no range
        log.write_segment(
            {"G_L1": segment_cols(k * n, n, k, schedule=k == 1), "D_real": every_other}
        )
    log.write_index()
    return folder


def parsed_arrays(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """The full parse, as the reader did it before column files: JSON lists to arrays."""
    out: dict[str, dict[str, list]] = {}
    for segment in read_log_files(folder).segments:
        for name, cols in segment.losses.items():
            for f in FIELDS:
                out.setdefault(name, {}).setdefault(f, []).append(
                    np.asarray(cols[f], dtype=np.float64)
                )
    arrays = {name: {f: np.concatenate(v) for f, v in cols.items()} for name, cols in out.items()}
    for cols in arrays.values():
        cols["step"] = cols["step"].astype(np.int64)
    return arrays


def read_arrays(folder: Path, **kwargs) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, list]] = {}
    for segment in read_log_arrays(folder, **kwargs).segments:
        for name, cols in segment.losses.items():
            for f in FIELDS:
                out.setdefault(name, {}).setdefault(f, []).append(cols[f])
    return {name: {f: np.concatenate(v) for f, v in cols.items()} for name, cols in out.items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for f in FIELDS:
            assert a[name][f].dtype == b[name][f].dtype, (name, f)
            assert np.array_equal(a[name][f], b[name][f], equal_nan=True), (name, f)


def column_files(folder: Path) -> list[Path]:
    return sorted((folder / layout.LOSS_LOG_DIR).glob("*" + loss_columns.SUFFIX))


def parsing_fails(monkeypatch) -> None:
    """From here on a read that parses a JSON segment fails the test: columns must serve it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a segment was parsed although its column file is current")

    monkeypatch.setattr(loss_log, "_read_segment", refuse)


def test_the_writer_stores_columns_that_read_as_the_full_parse(tmp_path, monkeypatch):
    folder = write_log(tmp_path / "run_v1")
    assert [p.name for p in column_files(folder)] == [f"{k:06d}.columns" for k in (1, 2, 3)]
    expected = parsed_arrays(folder)
    parsing_fails(monkeypatch)
    assert_same(read_arrays(folder), expected)
    header = json.loads(column_files(folder)[0].read_bytes().split(b"\n")[0])
    kinds = {f: next(iter(header["losses"]["G_L1"][f])) for f in FIELDS}
    assert kinds == {"epoch": "f8", "step": "range", "raw": "f8", "weight": "const"}
    assert next(iter(header["losses"]["D_real"]["step"])) == "f8"  # steps 0, 2, 4...


def test_the_review_draws_the_same_bucket_means_from_columns_as_from_json(tmp_path):
    folder = write_log(tmp_path / "run_v1")
    quick = loss_curves(read_experiment(folder))
    for path in column_files(folder):
        path.unlink()
    slow_exp = read_experiment(folder)  # parses (and writes the column files again)
    assert column_files(folder)
    from nectargan.review.loss_series import LossSeries

    for name, arrays in parsed_arrays(folder).items():  # the pre-column-file reader's arrays
        series = LossSeries(name, slow_exp.losses[name].tags, **arrays)
        slow_exp.losses[name] = series
    slow = loss_curves(slow_exp)
    assert quick == slow
    assert len(quick["G_L1"]["weighted"]["x"]) == 400
    assert quick["G_L1"]["weighted"]["y"][0] is not None  # the gaps are skipped, not averaged


def test_a_run_without_column_files_is_parsed_once_then_read_quickly(tmp_path, monkeypatch):
    folder = write_log(tmp_path / "old_v1")
    expected = parsed_arrays(folder)
    for path in column_files(folder):
        path.unlink()
    assert_same(read_arrays(folder, cache=False), expected)
    assert column_files(folder) == []  # cache=False leaves the folder as it was
    assert_same(read_arrays(folder), expected)
    assert len(column_files(folder)) == 3
    parsing_fails(monkeypatch)
    assert_same(read_arrays(folder), expected)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-9],  # torn
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit of the body: the CRC
        lambda data: b"not a header\n" + data,
        lambda data: b"",
    ],
    ids=["torn", "bit-flip", "foreign", "empty"],
)
def test_a_damaged_column_file_falls_back_to_the_json_and_is_rewritten(tmp_path, damage):
    folder = write_log(tmp_path / "run_v1")
    expected = parsed_arrays(folder)
    second = column_files(folder)[1]
    good = second.read_bytes()
    second.write_bytes(damage(good))
    assert_same(read_arrays(folder), expected)
    stamp = loss_columns.Stamp.of(folder / layout.LOSS_LOG_DIR / "000002.json")
    assert loss_columns.decode(second.read_bytes(), stamp) is not None  # current again


def test_a_segment_rewritten_after_its_columns_is_read_from_the_json(tmp_path):
    """A stale column file (the segment grew: more records appended) is never used."""
    folder = write_log(tmp_path / "run_v1")
    segment = folder / layout.LOSS_LOG_DIR / "000003.json"
    data = json.loads(segment.read_text())
    for cols in data["losses"].values():
        for f in FIELDS:
            cols[f] = cols[f] + cols[f][-2:]
        cols["step"][-2:] = [cols["step"][-3] + 1, cols["step"][-3] + 2]
    segment.write_text(json.dumps(data))
    got = read_arrays(folder)
    assert_same(got, parsed_arrays(folder))
    assert len(got["G_L1"]["step"]) == 3 * 5000 + 2


def test_a_new_segment_without_columns_joins_the_ones_with(tmp_path, monkeypatch):
    """The newest segment of a live run, written before its column file (or by an older
    writer): read from its JSON, the others from their columns."""
    folder = write_log(tmp_path / "run_v1")
    body = {"G_L1": segment_cols(15000, 300, 7), "D_real": segment_cols(30000, 300, 8)}
    body = {name: loss_log._clean_columns(cols) for name, cols in body.items()}
    loss_log.atomic_write_json(
        folder / layout.LOSS_LOG_DIR / "000004.json", {"segment": 4, "run": 1, "losses": body}
    )
    expected = parsed_arrays(folder)
    got = read_arrays(folder)
    assert_same(got, expected)
    assert len(got["G_L1"]["step"]) == 15300
    parsing_fails(monkeypatch)  # the new segment got its column file on that read
    assert_same(read_arrays(folder), expected)


def test_a_loss_with_no_records_in_a_segment_reads_as_empty(tmp_path):
    folder = write_log(tmp_path / "run_v1", segments=1, n=100)
    empty = {f: [] for f in FIELDS}
    loss_log.atomic_write_json(
        folder / layout.LOSS_LOG_DIR / "000002.json",
        {
            "segment": 2,
            "run": 1,
            "losses": {"G_L1": empty, "D_real": loss_log._clean_columns(segment_cols(0, 20, 1))},
        },
    )
    assert_same(read_arrays(folder), parsed_arrays(folder))
    assert_same(read_arrays(folder), parsed_arrays(folder))  # now from its column file
    assert len(column_files(folder)) == 2


def test_a_folder_that_cannot_be_written_keeps_its_columns_in_the_cache(tmp_path, monkeypatch):
    """Tests run as root, for whom no folder is read-only: a directory stands where the
    column file would go, so writing it there fails as it would on a read-only share."""
    monkeypatch.setenv(loss_columns.CACHE_ENV, str(tmp_path / "cache"))
    folder = write_log(tmp_path / "shared_v1")
    expected = parsed_arrays(folder)
    for path in column_files(folder):
        path.unlink()
        path.mkdir()
    assert_same(read_arrays(folder), expected)
    cached = sorted((tmp_path / "cache" / "loss_columns").glob("*/*.columns"))
    assert [p.name for p in cached] == ["000001.columns", "000002.columns", "000003.columns"]
    parsing_fails(monkeypatch)
    assert_same(read_arrays(folder), expected)


def test_problems_read_the_same_from_columns_as_from_the_json(tmp_path):
    """A ragged segment's dropped records and a torn one's skip are said on every read."""
    folder = write_log(tmp_path / "run_v1")
    seg = folder / layout.LOSS_LOG_DIR
    data = json.loads((seg / "000002.json").read_text())
    data["losses"]["G_L1"]["weight"] = data["losses"]["G_L1"]["weight"][:-4]
    (seg / "000002.json").write_text(json.dumps(data))
    (seg / "000003.json").write_text((seg / "000003.json").read_text()[:100])
    expected = read_log_files(folder).problems
    assert any("4 record(s) dropped" in p for p in expected)
    first = read_log_arrays(folder)
    second = read_log_arrays(folder)
    assert first.problems == second.problems == expected
    assert_same(read_arrays(folder), parsed_arrays(folder))


def test_a_column_file_that_cannot_be_written_never_fails_the_flush(tmp_path, monkeypatch):
    cache_file = tmp_path / "not_a_folder"
    cache_file.write_text("x")
    monkeypatch.setenv(loss_columns.CACHE_ENV, str(cache_file))  # the cache cannot be made
    folder = tmp_path / "run_v1"
    (folder / layout.LOSS_LOG_DIR / "000001.columns").mkdir(parents=True)
    log = LossLog(folder)
    assert log.write_segment({"G_L1": segment_cols(0, 50, 1)}) is not None
    log.write_index()
    assert_same(read_arrays(folder), parsed_arrays(folder))
    assert not [p for p in os.listdir(folder / layout.LOSS_LOG_DIR) if p.endswith(".tmp")]


def test_any_column_file_error_stays_out_of_the_flush(tmp_path, monkeypatch):
    """A flush that raised after its segment was saved would keep the records and write
    them twice; so even an unexpected error in the column file is not passed on."""

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the encoder")

    monkeypatch.setattr(loss_columns, "encode", broken)
    folder = tmp_path / "run_v1"
    log = LossLog(folder)
    assert log.write_segment({"G_L1": segment_cols(0, 50, 1)}) is not None
    assert column_files(folder) == []
    monkeypatch.undo()
    assert_same(read_arrays(folder), parsed_arrays(folder))


# -- the Toolbox's background warm-up -------------------------------------------------------


def current_column_files(folder: Path) -> int:
    segments = sorted((folder / layout.LOSS_LOG_DIR).glob("*.json"))
    return sum(loss_columns.is_current(s, loss_columns.Stamp.of(s)) for s in segments)


def old_run(folder: Path) -> Path:
    """A run as trained before column files existed."""
    write_log(folder)
    for path in column_files(folder):
        path.unlink()
    assert current_column_files(folder) == 0
    return folder


def test_missing_column_files_are_written_once(tmp_path, monkeypatch):
    from nectargan.toolbox import column_warmer

    folder = old_run(tmp_path / "old_v1")
    expected = parsed_arrays(folder)
    monkeypatch.setattr(column_warmer.os, "nice", lambda n: 0)  # this is the test process
    assert column_warmer.main([str(folder), str(tmp_path / "deleted_v1")]) == 3
    assert current_column_files(folder) == 3
    assert column_warmer.main([str(folder)]) == 0  # current: nothing parsed again
    parsing_fails(monkeypatch)
    assert_same(read_arrays(folder), expected)


def test_the_toolbox_writes_old_runs_column_files_in_the_background(tmp_path):
    """A real Toolbox app with its background work on: after its warm-up, a child process
    writes the old run's column files (the first Review visit then reads them)."""
    from _support import wait_for
    from _toolbox import api_client, make_root, toolbox_app

    root = make_root(tmp_path)
    folder = old_run(root / "output" / "old_v1")
    (folder / "config.json").write_text("{}")
    app = toolbox_app(tmp_path, roots=[root], background=True)
    with api_client(app) as client:
        assert client.get("/api/runs").status_code == 200
        wait_for(lambda: current_column_files(folder) == 3, 120, what="the column files")
    assert not [p for p in os.listdir(folder / layout.LOSS_LOG_DIR) if p.endswith(".tmp")]


def test_a_resume_that_cuts_the_log_back_rewrites_the_column_files(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from nectargan.trainers.resume.history import rewind_loss_log

    folder = write_log(tmp_path / "run_v1")
    manager = SimpleNamespace(_log=LossLog(folder), _steps={"G_L1": 0, "D_real": 0})
    assert rewind_loss_log(manager, epochs_done=7) > 0  # epochs 0.0-14.999: cut at 7
    expected = parsed_arrays(folder)
    assert expected["G_L1"]["epoch"].max() < 7
    assert current_column_files(folder) == 3
    parsing_fails(monkeypatch)
    assert_same(read_arrays(folder), expected)


def test_a_resumed_dashboard_draws_the_same_points_from_columns(tmp_path):
    """The loss windows a resume redraws: from the column files, the same x and values as
    from the JSON lists (the live graph's display steps, a null a gap)."""
    from nectargan.losses.loss_log import read_loss_log
    from nectargan.trainers.dashboard import display_points, weighted_losses

    folder = write_log(tmp_path / "run_v1", n=2000)
    groups = {"G": ["G_L1"], "D": ["D_real"]}

    def plain(points):
        return {
            x: {g: {k: None if math.isnan(v) else v for k, v in d.items()} for g, d in p.items()}
            for x, p in points.items()
        }

    def per_record(losses, batches, every):
        """The redraw as it was, one record at a time over the JSON lists."""
        out = {}
        for group, names in groups.items():
            for name in names:
                cols = losses[name]
                for x, value in zip(cols["epoch"], cols["weighted"], strict=True):
                    if round((x - math.floor(x)) * batches) % every == 0:
                        shown = math.nan if value is None else float(value)
                        out.setdefault(float(x), {}).setdefault(group, {})[name] = shown
        return out

    lists = read_loss_log(folder)["losses"]
    quick = plain(display_points(weighted_losses(folder), groups, 1000, 3))
    assert quick == plain(display_points(lists, groups, 1000, 3))
    assert quick == plain(per_record(lists, 1000, 3))
    assert any(v["G"]["G_L1"] is None for v in quick.values() if "G" in v)  # a gap
    expected_x = [e / 1000 for e in range(6000) if e % 1000 % 3 == 0]
    assert sorted(x for x, v in quick.items() if "G" in v) == expected_x
