"""Dashboard plots that do not mislead (issue 24 §3), read back from a real Visdom server.

A constant learning rate is drawn on an axis around its value, the loss windows
count epochs and give each loss its own pane, the replay's slider position is the
epoch its caption names, and the console shows no ETA from the warm-up steps.
"""

from __future__ import annotations

import io
from pathlib import Path

from _support import tiny_training_config

from nectargan.review import read_experiment, replay
from nectargan.review.compare import config_differences
from nectargan.utils.progress_bar import ProgressBar
from nectargan.visualizer.visdom import panels
from nectargan.visualizer.visdom.visualizer import VisdomVisualizer


def connect(server, env: str) -> VisdomVisualizer:
    vis = VisdomVisualizer(env=env, server="http://127.0.0.1", port=server.port)
    vis.clear_env()
    return vis


def test_a_constant_learning_rate_is_drawn_around_its_value(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    for epoch in (1, 2, 3):
        vis.update_panel(panels.LR, epoch, {"G": 2e-4, "D": 2e-4})
    assert vis.flush(timeout=30)
    axis = visdom_server.window("lr", env_name)["content"]["layout"]["yaxis"]
    low, high = axis["range"]  # Plotly's own pick for a flat line is value +-1
    assert low < 2e-4 < high and high - low <= 4e-4
    assert visdom_server.line_series("lr", env_name)["G"][1] == [2e-4] * 3
    vis.close()


def test_a_changing_learning_rate_keeps_plotly_autorange(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    vis.update_panel(panels.LR, 1, {"G": 2e-4, "D": 2e-4})
    vis.update_panel(panels.LR, 2, {"G": 1e-4, "D": 1e-4})
    assert vis.flush(timeout=30)
    assert "range" not in visdom_server.window("lr", env_name)["content"]["layout"]["yaxis"]
    vis.close()


def test_loss_windows_count_epochs_and_give_each_loss_its_own_pane(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    for step in range(6):
        epoch = step / 3
        vis.update_loss_graphs(
            epoch, {"G_GAN": 2.0 + step % 2, "G_L1": 40.0 - step}, {"D_real": 0.5}
        )
    assert vis.flush(timeout=30)
    content = visdom_server.window("loss_G", env_name)["content"]
    layout = content["layout"]
    assert layout["xaxis"]["title"] == "Epoch"
    pane = {t["name"]: t["yaxis"] for t in content["data"]}
    assert pane["G_GAN"] != pane["G_L1"]  # G_L1 (~40) no longer flattens G_GAN (~2-3)
    key = {"y": "yaxis", "y2": "yaxis2"}
    assert layout[key[pane["G_GAN"]]]["title"] == "G_GAN"
    assert layout[key[pane["G_L1"]]]["title"] == "G_L1"
    low, high = (layout[key[pane["G_GAN"]]]["domain"], layout[key[pane["G_L1"]]]["domain"])
    assert low[1] <= high[0] or high[1] <= low[0]  # stacked, not overlaid
    vis.close()


def test_a_comparison_puts_every_runs_loss_in_that_losss_pane():
    spec = panels.loss_spec("loss_G", "Generator Loss", ["a/G_GAN", "a/G_L1", "b/G_GAN"])
    assert [(p.ylabel, p.series) for p in spec.panes] == [
        ("G_GAN", ("a/G_GAN", "b/G_GAN")),
        ("G_L1", ("a/G_L1",)),
    ]


def test_replay_slider_position_is_the_epoch_of_its_caption(tmp_path, visdom_server, env_name):
    from nectargan.dataset import generate_synthetic_dataset
    from nectargan.trainers.pix2pix_trainer import Pix2pixTrainer

    data = generate_synthetic_dataset(tmp_path / "data", n=8, size=32)
    config = tiny_training_config(tmp_path / "out", data, "slider", dataloader={"num_workers": 0})
    config["train"]["epochs"], config["train"]["epochs_decay"] = 3, 0
    trainer = Pix2pixTrainer(config)
    trainer.fit()
    trainer.close()
    replay([read_experiment(trainer.experiment_dir)], env=env_name, port=visdom_server.port)
    items = visdom_server.window("examples", env_name)["content"]
    for position in (1, 2, 3):  # Visdom's slider reads "Selected: <position>"
        assert items[position]["caption"] == f"epoch {position}"


def test_no_eta_from_warm_up_steps():
    """A slow first step (loader workers, first allocations) says nothing of the pace."""
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(100, stream=out, log_interval=0, warmup=2, clock=lambda: now[0])
    now[0] = 30.0  # the first step: 30 s of warm-up
    bar.update()
    assert "ETA ?" in out.getvalue().splitlines()[-1]
    for _ in range(11):  # then 0.5 s a step
        now[0] += 0.5
        bar.update()
    last = out.getvalue().splitlines()[-1]
    # 88 steps left at 2 it/s: 44 s; from the start's average it would say 3m52s
    assert "ETA 44s" in last, last
    bar.close()


def test_resume_settings_are_not_config_differences(tmp_path):
    from nectargan.review.experiment_reader import Experiment

    def run(name: str, resume: dict) -> Experiment:
        exp = Experiment(path=Path(tmp_path / name))
        exp.config = {"train": {"epochs": 5, "resume": resume}, "common": {"name": name}}
        return exp

    plain = run("a", {"enable": False, "experiment_dir": None, "epoch": -1})
    resumed = run("b", {"enable": True, "experiment_dir": "out/b", "epoch": 3})
    keys = [key for key, _ in config_differences([plain, resumed])]
    assert keys == ["common.name"]
