"""Comparing runs: ``replay A B C`` (real Visdom server) and ``report A B C --output DIR``.

The runs are hand-written experiment directories (config, loss log,
val_metrics.json, epoch_stats.json, examples, checkpoint names), so every
expected number is known; tests/test_review.py compares real tiny trainings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _support import local_refs, textured_image

from nectargan.cli.main import main
from nectargan.losses.loss_log import LossLog
from nectargan.review import read_experiment, write_comparison
from nectargan.review.compare import (
    ABSENT,
    UNKNOWN,
    CompareError,
    config_differences,
    read_experiments,
    summarize,
)
from nectargan.review.compare_report import run_folders
from nectargan.runs import records

BATCHES = 4
LOSSES = (("G_L1", ["G"]), ("D_real", ["D"]))


def write_run(
    root: Path, name: str, epochs: int, *, lr: float, features: int, val: bool = True
) -> Path:
    """A finished run of ``epochs`` epochs; val L1 falls then rises (best epoch = 2 if > 2)."""
    exp = root / f"{name}_v1"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "examples").mkdir()
    config = {
        "common": {"experiment_name": name, "device": "cpu"},
        "train": {"epochs": epochs, "epochs_decay": 0, "lr_initial": lr, "beta1": 0.5},
        "dataloader": {"batch_size": 4},
    }
    config["train"]["generator"] = {"features": features, "n_downs": 5}
    (exp / "config.json").write_text(json.dumps(config))
    log = LossLog(exp)
    for loss, tags in LOSSES:
        log.describe_loss(loss, {"tags": tags, "weight": 2.0, "schedule": None})
    for e in range(epochs):
        steps = list(range(e * BATCHES, (e + 1) * BATCHES))
        cols = {
            "epoch": [s / BATCHES for s in steps],
            "step": steps,
            "raw": [lr * 1000 + e for _ in steps],
            "weight": [2.0] * BATCHES,
        }
        log.write_segment({loss: dict(cols) for loss, _ in LOSSES})
        (exp / "checkpoints" / f"epoch_{e + 1:04d}.pt").write_bytes(b"")
        for k in range(2):
            textured_image(e * 10 + k, 16).save(exp / "examples" / f"epoch_{e + 1:04d}_{k}.png")
    log.write_index()
    stats = [
        {"epoch": e, "lr_G": lr, "lr_D": lr, "images": 16, "seconds": 2.0 * e, "images_per_s": 8.0}
        for e in range(1, epochs + 1)
    ]
    records.write_epoch_stats(exp, stats)
    if val:
        rows = [
            {"epoch": e, "l1": 0.3 + abs(e - 2) / 10 + lr, "psnr": 20.0 - abs(e - 2), "ssim": 0.5}
            for e in range(1, epochs + 1)
        ]
        records.write_val_metrics(exp, rows, "val", records.best_row(rows))
    return exp


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """a: 3 epochs, lr 1e-4; b: 2 epochs, lr 2e-4, features 16; c: no validation at all."""
    root = tmp_path_factory.mktemp("compare")
    return [
        write_run(root, "a", 3, lr=1e-4, features=8),
        write_run(root, "b", 2, lr=2e-4, features=16),
        write_run(root, "c", 2, lr=1e-4, features=8, val=False),
    ]


def val_rows(exp: Path) -> list[dict]:
    return json.loads((exp / "val_metrics.json").read_text())["rows"]


# -- replay -----------------------------------------------------------------------------------


def test_replay_overlays_validation_and_tabulates_differences(
    runs, visdom_server, env_name, capsys
):
    code = main(
        ["replay", *map(str, runs), "--env", env_name, "--server", "http://127.0.0.1"]
        + ["--port", str(visdom_server.port)]
    )
    out = capsys.readouterr().out
    assert code == 0
    series = visdom_server.line_series("val_metrics", env_name)
    assert set(series) == {f"{r}_v1/{m}" for r in "ab" for m in ("L1", "PSNR", "SSIM")}
    for run in runs[:2]:
        rows = val_rows(run)
        for metric, key in (("L1", "l1"), ("PSNR", "psnr"), ("SSIM", "ssim")):
            xs, ys = series[f"{run.name}/{metric}"]
            assert len(xs) == len(rows)  # every validation of the file, no more
            assert xs == [r["epoch"] for r in rows]
            assert ys == pytest.approx([r[key] for r in rows])
    traces = visdom_server.window("val_metrics", env_name)["content"]["data"]
    colors = {t["name"]: t["line"]["color"] for t in traces}
    assert colors["a_v1/L1"] == colors["a_v1/SSIM"] != colors["b_v1/L1"]  # one colour per run
    assert {t["legendgroup"] for t in traces} == {"a_v1", "b_v1"}
    loss = visdom_server.line_series("loss_G", env_name)
    assert len(loss["c_v1/G_L1"][0]) == 2 * BATCHES  # a run without validation still replays

    pane = visdom_server.window("comparison", env_name)["content"]
    assert pane.count("train.lr_initial") == 1 and "0.0002" in pane
    assert "train.generator.features" in pane and "train.epochs<" in pane
    for same in ("train.beta1", "dataloader.batch_size", "common.device"):
        assert same not in pane  # only the keys that differ
    assert "c_v1: no validation recorded" in pane
    assert "<td style='border:1px solid #ccc;padding:2px 6px;text-align:right'>2</td>" in pane
    assert "note: c_v1: no validation recorded" in out
    assert "val_metrics: a_v1/L1 3, b_v1/L1 2, a_v1/PSNR 3" in out
    assert (
        "  a_v1: best epoch 2 (val L1 0.3001, PSNR 20, SSIM 0.5); epochs 3 of 3; 8 images/s" in out
    )
    assert "  c_v1: no validation; epochs 2 of 2" in out
    assert "config keys that differ: common.experiment_name, train.epochs, train.lr_initial" in out


def test_the_same_directory_twice_is_refused(runs, tmp_path, capsys):
    again = runs[0].parent / "." / runs[0].name
    out = ["--output", str(tmp_path / "cmp")]
    for argv in (
        ["replay", str(runs[0]), str(again)],
        ["report", str(runs[0]), str(runs[0]), *out],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert repr(str(runs[0])) in err and "given twice" in err
    assert not (tmp_path / "cmp").exists()  # refused before anything is written
    with pytest.raises(CompareError, match="given twice"):
        read_experiments([runs[1], runs[1]])


def test_bad_directories_are_named(runs, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    assert main(["report", str(runs[0]), str(tmp_path / "notes"), "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"'{tmp_path / 'notes'}' is not a NectarGAN experiment directory" in err
    assert "config.json" in err  # what is expected there
    assert main(["report", str(runs[0]), str(runs[1])]) == 2
    assert "a report of 2 runs needs --output DIR" in capsys.readouterr().err


# -- report -----------------------------------------------------------------------------------


def test_comparison_report_is_self_contained_and_links_run_reports(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["report", *map(str, runs), "--output", str(out)]) == 0
    assert "report written" in capsys.readouterr().out
    page = out / "index.html"
    refs = local_refs(page)
    reports = [p for p in refs if p.suffix == ".html"]
    assert [p.parent.name for p in reports] == ["a_v1", "b_v1", "c_v1"]
    for report in reports:
        local_refs(report)  # each single-run report is self-contained as well
    pngs = {p.relative_to(out.resolve()).as_posix() for p in refs if p.suffix == ".png"}
    assert {"assets/loss_G_L1.png", "assets/loss_D_real.png", "assets/val_metrics.png"} <= pngs
    latest = {"assets/examples/a_v1/epoch_0003_0.png", "assets/examples/b_v1/epoch_0002_1.png"}
    assert latest <= pngs and not any("epoch_0001" in p for p in pngs)  # latest epoch only
    text = page.read_text()
    row_a = text[text.index('href="runs/a_v1/index.html"') :].split("</tr>")[0]
    # a: 3 of 3 epochs, best epoch 2 (L1 0.3001, PSNR 20), final losses 2 * (0.1 + 2), 4 s/epoch
    for cell in (
        "3 of 3",
        "<td>2</td>",
        "<b>0.3001</b>",
        "<b>20</b>",
        "<td>4.2</td>",
        "<td>4</td>",
    ):
        assert cell in row_a, cell
    diff = text[text.index("Config differences") :]
    for key in ("train.lr_initial", "train.generator.features", "common.experiment_name"):
        assert key in diff
    assert "train.beta1" not in diff
    assert "c_v1: no validation recorded" in text


def test_comparison_report_says_why_a_run_report_is_missing(runs, tmp_path, capsys):
    """A run whose own report cannot be written is still compared; its cell says why."""
    out = tmp_path / "cmp"
    exps = [read_experiment(p) for p in runs[:2]]
    write_comparison(exps, out)
    shutil.rmtree(out / "runs")
    (out / "runs").write_text("not a folder")  # no run report can go below it
    result = write_comparison(exps, out)
    text = result.html.read_text()
    assert "a_v1 <span class='small'>(no single-run report: cannot write the report to" in text
    assert "runs/a_v1/index.html" not in text
    assert any(n.startswith("b_v1: no single-run report") for n in result.notes)
    local_refs(result.html)


# -- helpers ----------------------------------------------------------------------------------


def test_config_differences_absent_and_unknown(runs):
    exps = [read_experiment(p) for p in runs[:2]]
    exps[1].config = dict(exps[1].config, extra={"k": 1})
    third = read_experiment(runs[2])
    third.config = None
    diffs = dict(config_differences([*exps, third]))
    assert diffs["extra.k"] == [ABSENT, "1", UNKNOWN]
    assert diffs["train.lr_initial"] == ["0.0001", "0.0002", UNKNOWN]
    assert "train.beta1" not in diffs


def test_summaries_and_folder_names(runs):
    exps = [read_experiment(p) for p in runs]
    a, b, c = summarize(exps, ["x/a", "x/a#2", "c"])
    assert a.best["epoch"] == 2 and a.metric("psnr") == 20.0 and c.best is None
    assert a.final_losses["G_L1"] == pytest.approx(2 * (0.1 + 2))
    assert a.images_per_s == 8.0 and a.seconds_per_epoch == pytest.approx(4.0)
    assert b.epochs_text == "2 of 2"
    assert run_folders([a, b, c]) == ["x_a", "x_a_2", "c"]
    assert np.isfinite(list(b.final_losses.values())).all()
