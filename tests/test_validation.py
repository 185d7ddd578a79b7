"""Live validation, lr, throughput and run info: real runs against a real Visdom server."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from _support import tiny_training_config, wait_for, write_config

from nectargan.cli.main import main
from nectargan.review import read_experiment, replay, write_report
from nectargan.runs import records as rm
from nectargan.trainers import Pix2pixTrainer
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.evaluate import spread_indices
from nectargan.visualizer.visdom import panels

SERIES = {"val_metrics": {"L1", "PSNR", "SSIM"}, "lr": {"G", "D"}}


def run_config(tmp_path, dataroot, server=None, env=None, epochs=1, decay=1, **visdom) -> dict:
    vis = {"enable": server is not None, "update_frequency": 3, **visdom}
    if server is not None:
        vis.update(port=server.port, env_name=env)
    return tiny_training_config(
        tmp_path / "out",
        dataroot,
        "val",
        train={"epochs": epochs, "epochs_decay": decay},
        visualizer={"visdom": vis},
    )


def window_points(server, win: str, env: str) -> dict[str, tuple[list, list]]:
    return server.line_series(win, env)


def test_live_windows_match_the_files_and_the_test_command(
    tmp_path, dataroot, visdom_server, env_name, capsys
):
    trainer = Pix2pixTrainer(run_config(tmp_path, dataroot, visdom_server, env_name))
    trainer.fit()
    exp = trainer.experiment_dir
    rows = rm.read_val_metrics(exp)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["images"] == 4 and r["seconds"] > 0 for r in rows)  # the 4-item val split

    # val_metrics: one point per validation per series, the values of val_metrics.json
    val = window_points(visdom_server, "val_metrics", env_name)
    assert set(val) == SERIES["val_metrics"]
    for name, key in panels.VAL_COLUMNS.items():
        xs, ys = val[name]
        assert xs == [1, 2]
        assert ys == pytest.approx([r[key] for r in rows], rel=1e-12)
    # three stacked panes, each with its own y axis, so PSNR/SSIM stay readable next to L1
    layout = visdom_server.window("val_metrics", env_name)["content"]["layout"]
    assert {k for k in layout if k.startswith("yaxis")} == {"yaxis", "yaxis2", "yaxis3"}

    # lr: what the scheduler set for each epoch
    lr = window_points(visdom_server, "lr", env_name)
    assert set(lr) == {"G", "D"}
    expected = [trainer.sched_G.lr_at(e)[0] for e in range(2)]
    assert lr["G"] == ([1, 2], pytest.approx(expected)) and expected[0] > expected[1]
    assert lr["D"][1] == pytest.approx([trainer.sched_D.lr_at(e)[0] for e in range(2)])

    stats = rm.read_epoch_stats(exp)
    tp = window_points(visdom_server, "throughput", env_name)
    assert tp["images/s"] == ([1, 2], pytest.approx([s["images_per_s"] for s in stats]))
    assert tp["s/epoch"][1] == pytest.approx([s["seconds"] for s in stats])
    assert all(s["images"] == 32 for s in stats)

    info = visdom_server.window("run_info", env_name)["content"]
    assert "2/2" in info and "best val L1" in info and "checkpoints/best.pt" in info
    assert "train.epochs_decay = 1" in info and "train.lr_initial" not in info  # only changes
    assert f"G {sum(p.numel() for p in trainer.gen.parameters()):,}" in info

    # best.pt: the epoch with the lowest val L1, linked (not copied) to its checkpoint
    best = min(rows, key=lambda r: r["l1"])
    assert json.loads((exp / rm.VAL_METRICS_FILE).read_text())["best"]["epoch"] == best["epoch"]
    best_pt = exp / "checkpoints" / "best.pt"
    assert best_pt.samefile(ckpt.epoch_path(exp, best["epoch"]))
    assert json.loads((exp / "checkpoints" / "latest.json").read_text())["file"] == "epoch_0002.pt"

    # nectargan replay rebuilds the same windows from the files
    result = replay(
        [read_experiment(exp)],
        env=f"{env_name}_replay",
        server="http://127.0.0.1",
        port=visdom_server.port,
    )
    for win in ("val_metrics", "lr", "throughput"):
        replayed = window_points(visdom_server, win, result.env)
        assert replayed == window_points(visdom_server, win, env_name), win
        live_layout = visdom_server.window(win, env_name)["content"]["layout"]
        assert visdom_server.window(win, result.env)["content"]["layout"] == live_layout
    assert visdom_server.window("run_info", result.env)["content"] == info

    # nectargan report: a validation section with the plots and the best epoch
    page = write_report(read_experiment(exp), tmp_path / "report")
    text = page.html.read_text()
    assert f"best val L1 {best['l1']:.4f} at epoch {best['epoch']}" in text
    assert {p.name for p in page.images} >= {"val_metrics.png", "epoch_stats.png"}

    # nectargan test --split val gives the same numbers for the same checkpoint
    precision = rows[-1]["precision"]
    args = ["test", "--experiment", str(exp), "--split", "val", "--no-images"]
    args += ["--precision", {"fp32": "off"}.get(precision, precision)]
    assert main([*args, "--epoch", "2", "--out", str(tmp_path / "t2")]) == 0
    report = json.loads((tmp_path / "t2" / "metrics.json").read_text())
    assert report["n_images"] == rows[-1]["images"]
    for key in ("l1", "psnr", "ssim"):
        assert report["metrics"][key] == pytest.approx(rows[-1][key], rel=1e-6, abs=1e-9)
    assert main([*args, "--epoch", "best"]) == 0
    out = capsys.readouterr().out
    assert "best.pt" in out
    report = json.loads(
        (exp / "test" / f"best_epoch_{best['epoch']:04d}" / "metrics.json").read_text()
    )
    assert report["metrics"]["l1"] == pytest.approx(best["l1"], rel=1e-6)


def test_resume_from_an_earlier_epoch_continues_without_duplicates(
    tmp_path, dataroot, visdom_server, env_name
):
    cfg = run_config(tmp_path, dataroot, visdom_server, env_name, epochs=2, decay=1)
    first = Pix2pixTrainer(cfg)
    first.fit()
    exp = first.experiment_dir
    before = rm.read_val_metrics(exp)
    assert [r["epoch"] for r in before] == [1, 2, 3]

    # resume after epoch 1: epochs 2 and 3 are trained again and replace their rows
    cfg["train"]["resume"] = {"enable": True, "experiment_dir": str(exp), "epoch": 1}
    again = Pix2pixTrainer(cfg)
    assert again.epochs_completed == 1
    # at start the dashboard shows what the kept epoch recorded
    wait_for(
        lambda: window_points(visdom_server, "val_metrics", env_name).get("L1", ([],))[0] == [1],
        10,
        what="val_metrics re-plotted from the file",
    )
    assert [r["epoch"] for r in rm.read_val_metrics(exp)] == [1]
    again.fit()
    after = rm.read_val_metrics(exp)
    assert [r["epoch"] for r in after] == [1, 2, 3]
    assert after[0] == before[0]
    for win in ("val_metrics", "lr", "throughput"):
        for name, (xs, _) in window_points(visdom_server, win, env_name).items():
            assert xs == [1, 2, 3], (win, name)
    assert [r["epoch"] for r in rm.read_epoch_stats(exp)] == [1, 2, 3]
    best = rm.best_row(after)
    assert rm.read_val_best(exp)["epoch"] == best["epoch"]
    assert (exp / "checkpoints" / "best.pt").samefile(ckpt.epoch_path(exp, best["epoch"]))


def test_a_new_run_clears_the_windows_an_earlier_run_left(tmp_path, visdom_server, env_name):
    from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

    old = VisdomVisualizer(env=env_name, server="http://127.0.0.1", port=visdom_server.port)
    old.update_panel(panels.VAL_METRICS, 7, {"L1": 0.5, "PSNR": 10.0, "SSIM": 0.1})
    old.update_text("stale", win=panels.RUN_INFO)
    assert visdom_server.window("val_metrics", env_name) is not None
    fresh = VisdomVisualizer(env=env_name, server="http://127.0.0.1", port=visdom_server.port)
    fresh.clear_env()  # what the trainer does when it connects
    assert visdom_server.window("val_metrics", env_name) is None
    assert visdom_server.window("run_info", env_name) is None
    with pytest.raises(ValueError, match="unknown"):
        fresh.update_panel(panels.LR, 1, {"X": 1.0})


def test_validation_leaves_training_unchanged(tmp_path, dataroot):
    """Same seed, with and without validation: bit-identical weights after the epoch."""
    weights = []
    for every in (1, 0):
        cfg = run_config(tmp_path / f"every{every}", dataroot, epochs=1, decay=0, val_every=every)
        trainer = Pix2pixTrainer(cfg)
        trainer.fit()
        weights.append({k: v.clone() for k, v in trainer.gen.state_dict().items()})
        has_file = (trainer.experiment_dir / rm.VAL_METRICS_FILE).exists()
        assert has_file == bool(every)
        assert (trainer.experiment_dir / rm.EPOCH_STATS_FILE).exists()
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_val_every_max_images_and_test_split_fallback(tmp_path, dataroot):
    # no val/ split: the test split is validated
    root = tmp_path / "data"
    shutil.copytree(dataroot, root)
    shutil.rmtree(root / "val")
    cfg = run_config(
        tmp_path, root, epochs=2, decay=1, val_every=2, val_max_images=3, **{"enable": False}
    )
    cfg["save"] = {"model_save_rate": 0, "num_examples": 0}  # only the last epoch is saved
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    exp = trainer.experiment_dir
    data = json.loads((exp / rm.VAL_METRICS_FILE).read_text())
    assert data["split"] == "test"
    # every 2nd epoch and the last one, on 3 of the 4 test items
    assert [(r["epoch"], r["images"]) for r in data["rows"]] == [(2, 3), (3, 3)]
    best = data["best"]["epoch"]
    best_state = ckpt.load_checkpoint(exp / "checkpoints" / "best.pt")
    assert best_state["epoch"] == best and not best_state["interrupted"]
    if best == 2:  # no epoch_0002.pt (save rate 0): best.pt was written from the state
        assert not ckpt.epoch_path(exp, 2).exists()
    info = json.loads((exp / rm.RUN_INFO_FILE).read_text())
    assert info["dataset"] == {"train": 32, "val": 3, "val_split": "test", "val_split_size": 4}
    assert info["epoch"] == 3 and info["best"]["epoch"] == best
    assert main(["test", "--experiment", str(exp), "--max-images", "3", "--no-images"]) == 0


def test_test_command_epoch_argument(tmp_path, dataroot, capsys):
    cfg = run_config(tmp_path, dataroot, epochs=1, decay=0, val_every=0)
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    assert trainer.monitor.describe() == "validation: off (visualizer.visdom.val_every is 0)"
    exp = str(trainer.experiment_dir)
    assert main(["test", "--experiment", exp, "--epoch", "best"]) == 2
    assert "no best.pt" in capsys.readouterr().err
    assert main(["test", "--experiment", exp, "--max-images", "0"]) == 2
    assert "--max-images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["test", "--experiment", exp, "--epoch", "worst"])
    assert "'best'" in capsys.readouterr().err


# -- pieces -------------------------------------------------------------------------------


def test_panel_body_is_valid_json_with_one_axis_per_pane():
    body = panels.panel_body(
        "e",
        panels.VAL_METRICS,
        {"L1": ([1, 2], [0.2, float("nan")]), "PSNR": ([1], [13.0]), "SSIM": ([], [])},
    )
    msg = json.loads(body)
    assert msg["win"] == "val_metrics" and msg["eid"] == "e"
    assert [t["name"] for t in msg["data"]] == ["L1", "PSNR"]  # empty series left out
    assert msg["data"][0]["y"] == [0.2, None]  # NaN is a gap, never an invalid token
    assert [t["yaxis"] for t in msg["data"]] == ["y", "y2"]
    domains = [msg["layout"][k]["domain"] for k in ("yaxis", "yaxis2", "yaxis3")]
    assert domains[0][1] == 1.0 and domains[-1][0] == 0.0
    assert all(a[0] > b[1] for a, b in zip(domains, domains[1:], strict=False))  # no overlap


def test_run_files_are_tolerant_and_trimmed(tmp_path):
    assert rm.read_val_metrics(tmp_path) == [] and rm.read_val_best(tmp_path) is None
    (tmp_path / rm.VAL_METRICS_FILE).write_text("{not json")
    assert rm.read_val_metrics(tmp_path) == []
    rows = [{"epoch": e, "l1": l1} for e, l1 in ((1, 0.3), (2, float("nan")), (3, 0.1), (3, 0.2))]
    rows.append({"epoch": "x"})
    rm.write_val_metrics(tmp_path, rows, "val", {"epoch": 3, "l1": 0.2})
    read = rm.read_val_metrics(tmp_path)  # NaN written as null, duplicate epoch: last wins
    assert read == [{"epoch": 1, "l1": 0.3}, {"epoch": 2, "l1": None}, {"epoch": 3, "l1": 0.2}]
    assert rm.rows_up_to(read, 2) == read[:2]
    assert rm.best_row(read)["epoch"] == 3 and rm.best_row(read[1:2]) is None


def test_helpers():
    assert spread_indices(10, None) == list(range(10))
    assert spread_indices(10, 64) == list(range(10))
    assert spread_indices(10, 3) == [0, 4, 9] or spread_indices(10, 3) == [0, 5, 9]
    assert spread_indices(10, 1) == [0]
    changes = panels.flat_changes({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1, "c": 0}})
    assert changes == {"a.c": 2, "d": 3}
    html_text = panels.run_info_html(
        {"epoch": 3, "total_epochs": 10, "best": {"epoch": 2, "l1": 0.05}, "eta_s": 3700}
    )
    assert "3/10" in html_text and "0.0500 at epoch 2" in html_text and "1h01m40s" in html_text


def test_a_few_synth_pairs_with_empty_val_and_test_train_and_hint_is_quoted(tmp_path, capsys):
    # Before: `data synth --n 3` left val/ and test/ empty and `train` on it failed with
    # "no image files in '.../val'"; the printed hints broke on a path with a space.
    root = tmp_path / "ünï data"
    assert main(["data", "synth", str(root), "--n", "3", "--size", "32"]) == 0
    assert not list((root / "val").iterdir()) and not list((root / "test").iterdir())
    cfg = tiny_training_config(tmp_path / "my runs", root, "few")
    assert main(["train", "--config", str(write_config(tmp_path, cfg))]) == 0
    out = capsys.readouterr().out
    assert "validation: off (the dataset has no images in val/ or test/)" in out
    hint = next(line for line in out.splitlines() if line.startswith("evaluate with: "))
    exp = Path(shlex.split(hint.removeprefix("evaluate with: "))[-1])
    assert exp.parent == tmp_path / "my runs" and (exp / "checkpoints").is_dir()
