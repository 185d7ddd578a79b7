"""Reviewing runs: replay into a real Visdom server, static HTML report, crashed-run logs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from _support import free_port, local_refs, tiny_training_config, write_long_log
from PIL import Image

from nectargan.cli.main import main
from nectargan.losses import LossManager, read_loss_log
from nectargan.review import ExperimentError, ReportError, read_experiment, replay, write_report
from nectargan.review.replay import line_body, pick_epochs
from nectargan.review.report import ema

N_PAIRS = 24  # 19 train (4 full batches of 4; the last partial one is dropped), 3 val, 2 test
BATCHES = 4


# -- real short trainings (once per module) ---------------------------------------------------


def tiny_config(out: Path, dataroot: Path, name: str) -> dict:
    return tiny_training_config(out, dataroot, name, dataloader={"num_workers": 0})


def train_tiny_run(root: Path, name: str = "tiny", crash_at: tuple[int, int] | None = None) -> Path:
    """Train 2 epochs on 32 px synthetic pairs, then test; ``crash_at=(epoch, idx)`` fails there."""
    from nectargan.dataset import generate_synthetic_dataset
    from nectargan.trainers.evaluate import evaluate_experiment
    from nectargan.trainers.pix2pix_trainer import Pix2pixTrainer

    data = generate_synthetic_dataset(root / "data", n=N_PAIRS, size=32)
    trainer = Pix2pixTrainer(tiny_config(root / "out", data, name))
    if crash_at is not None:

        def crash(t, idx):
            if (t.current_epoch, idx) == crash_at:
                raise RuntimeError("simulated crash")

        trainer.step_observers.append(crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            trainer.fit()
        return trainer.experiment_dir
    trainer.fit()
    trainer.close()
    evaluate_experiment(trainer.experiment_dir, device="cpu")
    return trainer.experiment_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("review"))


@pytest.fixture(scope="module")
def crashed_dir(tmp_path_factory) -> Path:
    """A run that failed in its second epoch: interrupted.pt and a partial loss log."""
    return train_tiny_run(tmp_path_factory.mktemp("crash"), "crashy", crash_at=(1, 2))


def log_counts(experiment_dir: Path) -> dict[str, int]:
    return {n: len(c["step"]) for n, c in read_loss_log(experiment_dir)["losses"].items()}


def truncate_last_segment(src: Path, dest: Path) -> Path:
    """A copy of ``src`` whose last loss-log segment is cut mid-file (as a crash would)."""
    shutil.copytree(src, dest)
    last = sorted((dest / "loss_log").glob("*.json"))[-1]
    text = last.read_text()
    last.write_text(text[: len(text) // 2])
    return last


# -- replay -----------------------------------------------------------------------------------


def test_replay_real_run_has_every_logged_point(run_dir, visdom_server, env_name):
    result = replay(
        [read_experiment(run_dir)], env=env_name, server="http://127.0.0.1", port=visdom_server.port
    )
    log = read_loss_log(run_dir)["losses"]
    expected_x = [e + i / BATCHES for e in range(2) for i in range(BATCHES)]  # the live graph step
    for win, title, names in (
        ("loss_G", "Generator Loss", {"G_GAN", "G_L1"}),
        ("loss_D", "Discriminator Loss", {"D_real", "D_fake"}),
    ):
        series = visdom_server.line_series(win, env_name)
        assert set(series) == names
        for name, (xs, ys) in series.items():
            assert len(xs) == len(ys) == len(log[name]["step"]) == 2 * BATCHES
            assert xs == pytest.approx(expected_x)
            assert ys == pytest.approx(log[name]["weighted"])  # what the live graph shows
        window = visdom_server.window(win, env_name)
        assert window["title"] == title
        layout = window["content"]["layout"]
        assert layout["xaxis"]["title"] == "Epoch"  # x is the fractional epoch (issue 24)
        panes = [layout[k]["title"] for k in ("yaxis", "yaxis2")]
        assert sorted(panes) == sorted(names)  # one pane per loss
    assert result.points["loss_G"] == {"G_GAN": 2 * BATCHES, "G_L1": 2 * BATCHES}

    examples = visdom_server.window("examples", env_name)
    assert examples["type"] == "image_history" and len(examples["content"]) == 3
    captions = [c["caption"] for c in examples["content"]]
    assert captions[1:] == ["epoch 1", "epoch 2"]  # slider position N: epoch N (issue 24)
    assert examples["content"][0]["src"].startswith("data:image/png;base64,")
    summary = visdom_server.window("summary", env_name)["content"]
    assert "completed: 2 of 2 epoch(s)" in summary
    assert "&quot;experiment_name&quot;: &quot;tiny&quot;" in summary  # the config, escaped
    assert "Timing" in summary and "iteration(s) logged" in summary
    assert "measured by the trainer: 2 epoch(s)" in summary


def test_replay_twice_replaces_instead_of_duplicating(run_dir, visdom_server, env_name):
    exp = read_experiment(run_dir)
    for _ in range(2):
        replay([exp], env=env_name, server="http://127.0.0.1", port=visdom_server.port)
    assert len(visdom_server.line_series("loss_G", env_name)["G_GAN"][0]) == 2 * BATCHES
    examples = visdom_server.window("examples", env_name)["content"]
    assert len(examples) == 1 + 2  # the slider's card, then the two epochs once each


def test_clear_closes_other_windows(run_dir, visdom_server, env_name):
    visdom_server.client(env_name).text("stale", win="old_notes", env=env_name)
    exp = read_experiment(run_dir)
    replay([exp], env=env_name, server="http://127.0.0.1", port=visdom_server.port)
    assert visdom_server.window("old_notes", env_name) is not None  # kept by default
    replay([exp], env=env_name, server="http://127.0.0.1", port=visdom_server.port, clear=True)
    assert visdom_server.window("old_notes", env_name) is None
    assert visdom_server.window("loss_G", env_name) is not None


def test_compare_runs_one_series_per_run_and_loss(run_dir, crashed_dir, visdom_server, env_name):
    code = main(
        ["replay", str(run_dir), str(crashed_dir), "--env", env_name]
        + ["--server", "http://127.0.0.1", "--port", str(visdom_server.port)]
    )
    assert code == 0
    g = visdom_server.line_series("loss_G", env_name)
    assert set(g) == {"tiny_v1/G_GAN", "tiny_v1/G_L1", "crashy_v1/G_GAN", "crashy_v1/G_L1"}
    full, partial = log_counts(run_dir), log_counts(crashed_dir)
    assert len(g["tiny_v1/G_L1"][0]) == full["G_L1"]
    assert len(g["crashy_v1/G_L1"][0]) == partial["G_L1"]
    assert BATCHES < partial["G_L1"] < 2 * BATCHES  # stopped inside the second epoch
    d = visdom_server.line_series("loss_D", env_name)
    assert set(d) == {f"{r}/{n}" for r in ("tiny_v1", "crashy_v1") for n in ("D_real", "D_fake")}
    assert visdom_server.window("examples", env_name) is None  # a comparison is about losses
    assert "stopped early" in visdom_server.window("summary", env_name)["content"]
    val = visdom_server.line_series("val_metrics", env_name)
    for exp_dir, label in ((run_dir, "tiny_v1"), (crashed_dir, "crashy_v1")):
        rows = json.loads((exp_dir / "val_metrics.json").read_text())["rows"]
        for metric in ("L1", "PSNR", "SSIM"):
            assert len(val[f"{label}/{metric}"][0]) == len(rows)
    assert len(val["tiny_v1/L1"][0]) == 2 and len(val["crashy_v1/L1"][0]) == 1
    pane = visdom_server.window("comparison", env_name)["content"]
    assert "1 of 2 (stopped)" in pane and "2 of 2" in pane
    for key in ("common.experiment_name", "dataloader.dataroot"):
        assert key in pane
    assert "train.epochs<" not in pane and "train.generator.features" not in pane  # equal


def test_crashed_run_with_truncated_segment_replays_what_it_has(
    run_dir, tmp_path, visdom_server, env_name, capsys
):
    exp_dir = tmp_path / "tiny_v9"
    last = truncate_last_segment(run_dir, exp_dir)
    code = main(
        ["replay", str(exp_dir), "--env", env_name, "--server", "http://127.0.0.1"]
        + ["--port", str(visdom_server.port)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"loss_log/{last.name}: unreadable loss log segment" in out
    assert "skipped" in out and f"G_GAN {BATCHES} of {2 * BATCHES}" in out
    series = visdom_server.line_series("loss_G", env_name)
    readable = json.loads((exp_dir / "loss_log" / "000001.json").read_text())["losses"]
    for name, (xs, _) in series.items():
        assert len(xs) == len(readable[name]["step"]) == BATCHES
    assert "000002.json" in visdom_server.window("summary", env_name)["content"]


def test_run_without_dashboard_or_examples(tmp_path, visdom_server, env_name):
    """Only a loss log (LossManager used directly): losses replay, the rest is reported missing."""
    import torch

    from nectargan.losses import pix2pix

    exp_dir = tmp_path / "bare_v1"
    manager = LossManager(exp_dir)
    manager.init_from_spec(pix2pix, {}, "basic")
    x = torch.zeros(1, 3, 8, 8)
    for step in range(7):
        for name in manager.names:
            target = torch.ones(1, 3, 8, 8) if name != "D_fake" else torch.zeros(1, 3, 8, 8)
            value = x + (float("nan") if name == "G_L1" and step == 3 else step / 7)
            manager.compute_loss_xy(name, value, target, epoch=step / 7)
    manager.flush_log()
    exp = read_experiment(exp_dir)
    result = replay([exp], env=env_name, server="http://127.0.0.1", port=visdom_server.port)
    g = visdom_server.line_series("loss_G", env_name)
    assert {n: len(v[0]) for n, v in g.items()} == {"G_GAN": 7, "G_L1": 7}
    assert g["G_L1"][1][3] is None  # a NaN loss is a gap (null), not an invalid JSON token
    assert any("no example images" in n for n in result.notes)
    assert any("no config.json" in p for p in exp.problems)


def test_100k_point_log_replays_in_bulk(tmp_path, visdom_server, env_name):
    """Every point arrives in a handful of requests (the time it takes: bench/former_test_bounds.py)."""
    exp_dir = tmp_path / "long_v1"
    n = 50_000
    write_long_log(exp_dir, n=n, per=10_000)
    exp = read_experiment(exp_dir)
    result = replay([exp], env=env_name, server="http://127.0.0.1", port=visdom_server.port)
    assert result.points == {"loss_G": {"G_L1": n}, "loss_D": {"D_real": n}}
    assert len(visdom_server.line_series("loss_D", env_name)["D_real"][0]) == n
    assert result.requests <= 6  # env, 2 windows, summary, save: points go in bulk


def test_replay_to_missing_server_fails_clearly(run_dir, capsys):
    port = free_port()
    code = main(["replay", str(run_dir), "--server", "http://127.0.0.1", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"http://127.0.0.1:{port}" in err and "nectargan visdom start" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["replay", "/nonexistent/run_v1"], "'/nonexistent/run_v1' does not exist"),
        (["report", "/nonexistent/run_v1"], "'/nonexistent/run_v1' does not exist"),
        (["report", "RUN", "--smooth", "1.5"], "--smooth must be in [0, 1)"),
        (["replay", "RUN", "--port", "0"], "--port must be in 1..65535, got 0"),
        (["replay", "RUN", "--timeout", "0"], "--timeout must be a positive number"),
        (["report", "RUN", "--max-image-epochs", "-1"], "--max-image-epochs must be >= 0"),
    ],
)
def test_cli_bad_values_are_named(argv, needle, run_dir, capsys):
    argv = [str(run_dir) if a == "RUN" else a for a in argv]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_not_an_experiment_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ExperimentError, match="not a NectarGAN experiment directory"):
        read_experiment(tmp_path)


# -- reader details -------------------------------------------------------------------------


def test_reader_survives_lost_index_and_ragged_columns(tmp_path):
    """Index lost (crash before its first write) and a segment with columns of unequal length."""
    seg = tmp_path / "run_v1" / "loss_log"
    seg.mkdir(parents=True)
    cols = {"epoch": [0.0, 0.5, 1.0], "step": [0, 1, 2], "raw": [1.0, None, 3.0], "weight": [2, 2]}
    (seg / "000001.json").write_text(json.dumps({"segment": 1, "run": 1, "losses": {"G_L1": cols}}))
    (seg / "000002.json").write_text(json.dumps({"losses": {"D_x": {"epoch": ["a"]}}}))
    exp = read_experiment(tmp_path / "run_v1")
    g = exp.losses["G_L1"]
    assert g.tags == ["G"] and len(g) == 2  # tag from the G_ prefix; cut to the shortest column
    assert g.weighted[0] == 2.0 and math.isnan(g.weighted[1])
    assert any("differ in length; 1 record(s) dropped" in p for p in exp.problems)
    assert any("000002.json: loss 'D_x' lacks the columns" in p for p in exp.problems)


def test_reader_layout_matches_the_writers():
    """The reader keeps its own copy of the file names (to stay torch-free); they must agree."""
    from nectargan.losses import loss_log
    from nectargan.review import experiment_reader as reader
    from nectargan.trainers import checkpoint, evaluate, pix2pix_trainer, timing, trainer

    assert (reader.INDEX_NAME, reader.SEGMENT_DIR, reader.FIELDS) == (
        loss_log.INDEX_NAME,
        loss_log.SEGMENT_DIR,
        loss_log.FIELDS,
    )
    assert reader.CONFIG_FILE == trainer.CONFIG_FILE
    assert reader.EXAMPLES_DIR == pix2pix_trainer.EXAMPLES_DIR
    assert (reader.CHECKPOINT_DIR, reader.INTERRUPTED) == (
        checkpoint.CHECKPOINT_DIR,
        checkpoint.INTERRUPTED,
    )
    assert (reader.TEST_DIR, reader.METRICS_FILE) == (evaluate.TEST_DIR, evaluate.METRICS_FILE)
    assert reader.TIMING_FILE == timing.TIMING_FILE


def test_helpers():
    assert ema(np.array([1.0, 1.0, 1.0]), 0.9) == pytest.approx([1.0, 1.0, 1.0])  # debiased
    smoothed = ema(np.array([0.0, np.nan, 10.0]), 0.5)
    assert smoothed[0] == 0.0 and math.isnan(smoothed[1]) and 0 < smoothed[2] < 10
    epochs = list(range(1, 101))
    picked = pick_epochs(epochs, 5)  # works on any sequence
    assert picked[0] == 1 and picked[-1] == 100 and len(picked) == 5
    assert pick_epochs(epochs, 0) == epochs
    from nectargan.review.replay import LineSpec

    body = line_body(
        "e", LineSpec("w", "T", [("a", np.array([0.0, 1.0]), np.array([np.inf, 2.0]))])
    )
    assert json.loads(body)["data"][0]["y"] == [None, 2.0]


# -- report ---------------------------------------------------------------------------------


def test_report_is_self_contained_with_pngs(run_dir, tmp_path):
    result = write_report(read_experiment(run_dir), tmp_path / "rep", smooth=0.9, log_scale=True)
    assert result.html.is_file()
    refs = local_refs(result.html)
    # 2 loss plots, validation + lr/throughput plots, 2x2 examples, 2 test
    assert len(refs) == len(result.images) == 2 + 2 + 4 + 2
    for path in refs:
        with Image.open(path) as im:
            im.verify()
            assert im.format == "PNG"
    with Image.open(tmp_path / "rep" / "assets" / "loss_G.png") as im:
        assert im.size[0] >= 800
    text = result.html.read_text()
    for needle in ("Generator Loss", "Epoch 2", "psnr", "completed: 2 of 2", "EMA smoothing 0.9"):
        assert needle in text
    assert "&quot;experiment_name&quot;: &quot;tiny&quot;" in text


def test_comparison_report_of_real_runs_is_self_contained(run_dir, crashed_dir, tmp_path):
    from nectargan.review import write_comparison

    exps = [read_experiment(run_dir), read_experiment(crashed_dir)]
    result = write_comparison(exps, tmp_path / "cmp", smooth=0.9)
    refs = local_refs(result.html)
    reports = [p for p in refs if p.suffix == ".html"]
    assert [p.parent.name for p in reports] == ["tiny_v1", "crashy_v1"]
    for report in reports:
        assert len(local_refs(report)) >= 4  # each run's own page: loss plots, examples...
    # 4 loss plots, validation, the latest 2 examples of each run
    assert sum(p.parent.name == "assets" for p in refs) == 4 + 1
    assert sum(p.parent.parent.name == "examples" for p in refs) == 2 + 2
    text = result.html.read_text()
    for needle in ("1 of 2 (stopped)", "2 of 2", "dataloader.dataroot", "final G_L1"):
        assert needle in text


def test_report_of_crashed_run_says_what_it_skipped(run_dir, tmp_path, capsys):
    exp_dir = tmp_path / "tiny_v7"
    last = truncate_last_segment(run_dir, exp_dir)
    assert main(["report", str(exp_dir)]) == 0
    page = exp_dir / "report" / "index.html"
    text = page.read_text()
    assert f"{last.name}: unreadable loss log segment" in text
    assert "report written" in capsys.readouterr().out
    local_refs(page)


def test_report_rewrites_its_own_folder_but_not_others(run_dir, tmp_path):
    exp = read_experiment(run_dir)
    out = tmp_path / "rep"
    write_report(exp, out)
    write_report(exp, out, max_image_epochs=1)  # a second report replaces the first's images
    assert len(list((out / "assets" / "examples").iterdir())) == 2
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ReportError, match="non-empty folder that no report wrote"):
        write_report(exp, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
