"""The Review page's routes: one run as `nectargan report` reads it, 2-8 runs compared as
`report A B` compares them (same numbers), bad selections refused, a deleted run a message."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _toolbox import api_client, browser_client, make_root, toolbox_app

from nectargan.review import compare
from nectargan.toolbox.review_data import CHART_POINTS, bucket_means


@pytest.fixture
def box(tmp_path, tiny_experiment):
    """Two copies of the tiny run; the second's config says another lr (a key that differs)."""
    root = make_root(tmp_path)
    first = root / "output" / "first"
    second = root / "output" / "second"
    for run in (first, second):
        shutil.copytree(tiny_experiment, run, ignore=shutil.ignore_patterns(".nectargan.lock"))
    config = json.loads((second / "config.json").read_text())
    config["train"]["lr_initial"] = 0.0005
    (second / "config.json").write_text(json.dumps(config))
    return toolbox_app(tmp_path, roots=[root]), first, second


def test_one_run_shows_what_the_review_package_reads(box):
    app, first, _ = box
    client = api_client(app)
    data = client.get("/api/review/runs/0/first").json()
    assert set(data["losses"]) >= {"G_GAN", "G_L1"}
    for loss in data["losses"].values():
        assert len(loss["weighted"]["x"]) == len(loss["raw"]["x"]) > 0
    assert [r["epoch"] for r in data["val_metrics"]] == [1, 2]
    assert [r["epoch"] for r in data["epoch_stats"]] == [1, 2]
    assert [e["epoch"] for e in data["examples"]] == [1, 2]
    for name in data["examples"][0]["images"]:
        assert client.get(f"/runs/0/first/file/{name}").status_code == 200
    assert data["changed"]["dataloader.load_size"] == 32  # the tiny config, not the default
    assert "train.lr_initial" not in data["changed"]
    assert data["timing"] and data["epochs"] == "2 of 2"


def test_compare_matches_report_and_lists_only_differing_keys(box):
    app, first, second = box
    client = api_client(app)
    data = client.get("/api/review/compare?run=0/first&run=0/second").json()
    experiments = compare.read_experiments([first, second])
    expected = compare.config_differences(experiments)
    assert [(d["key"], d["values"]) for d in data["differences"]] == expected
    assert [d["key"] for d in data["differences"]] == ["train.lr_initial"]
    summaries = compare.summarize(experiments, ["first", "second"])
    assert [r["best"] for r in data["runs"]] == [s.best for s in summaries]
    overlay = compare.val_overlay(summaries)
    assert [p["title"] for p in data["val"]] == [pane.ylabel for pane, _ in overlay]
    assert data["val"][0]["series"]["1"]["y"] == overlay[0][1][1][1]
    assert set(data["losses"]) == set(compare.loss_names(summaries))


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("run=0/first", 400, "compare: expected 2-8 runs, got 1"),
        ("run=first&run=0/second", 400, "run 'first': expected <output root number>/<run name>"),
        ("run=0/first&run=0/first", 400, "given twice: name each run once"),
        ("run=0/first&run=0/nope", 404, "no run 'nope'"),
    ],
)
def test_bad_selections_are_refused_by_value(box, query, status, error):
    app, _, _ = box
    answer = api_client(app).get(f"/api/review/compare?{query}")
    assert answer.status_code == status
    assert error in answer.json()["error"]


def test_a_deleted_run_answers_a_message(box):
    app, first, _ = box
    client = browser_client(app)
    assert client.get("/review?run=0/first").status_code == 200
    shutil.rmtree(first)
    answer = client.get("/api/review/runs/0/first")
    assert answer.status_code == 404 and answer.json()["error"].startswith("no run 'first'")


def test_bucket_means_keep_gaps_and_the_mean():
    x = np.arange(10_000)
    y = np.ones(10_000)
    y[:100] = np.nan  # the first bucket (25 values each) is all NaN: a gap
    out = bucket_means(x, y)
    assert len(out["x"]) == CHART_POINTS
    assert out["y"][0] is None and out["y"][10] == 1.0
    assert out["x"][0] == pytest.approx(12.0)


def test_a_changed_run_is_read_again_not_served_stale(box):
    """The payload cache keys on the files: a new validation row shows on the next request."""
    from nectargan.runs import records

    app, first, _ = box
    client = api_client(app)
    before = client.get("/api/review/runs/0/first").json()["val_metrics"]
    assert client.get("/api/review/runs/0/first").json()["val_metrics"] == before
    rows = [*before, {**before[-1], "epoch": 3, "l1": 0.01}]
    records.write_val_metrics(first, rows, split="val", best=rows[-1])
    after = client.get("/api/review/runs/0/first").json()["val_metrics"]
    assert [r["epoch"] for r in after] == [1, 2, 3]
