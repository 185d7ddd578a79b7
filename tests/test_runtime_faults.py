"""Settings and situations that used to pass checks and then break a run (issue 11, 16-20)."""

from __future__ import annotations

import math
import re
import socket

import pytest
from _support import free_port, tiny_training_config, wait_for
from PIL import Image

from nectargan.cli.main import main
from nectargan.dataset.shape_check import not_side_by_side
from nectargan.trainers import Pix2pixTrainer
from nectargan.visualizer.visdom import server
from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

# -- 16: a dashboard error during training ---------------------------------------------------


def test_a_dashboard_error_mid_training_disables_it_once(
    tmp_path, dataroot, visdom_server, env_name, capsys
):
    cfg = tiny_training_config(
        tmp_path / "out",
        dataroot,
        "dash",
        train={"epochs": 2, "epochs_decay": 0},
        visualizer={
            "visdom": {
                "enable": True,
                "port": visdom_server.port,
                "env_name": env_name,
                "update_frequency": 2,
            }
        },
    )
    trainer = Pix2pixTrainer(cfg)
    assert trainer.vis is not None

    def broken(*args, **kwargs):
        raise RuntimeError("window exploded")

    trainer.vis.update_loss_graphs = broken  # our own object, not the server
    trainer.fit()
    trainer.close()
    err = capsys.readouterr().err
    assert err.count("dashboard disabled after an error") == 1, err
    assert "window exploded" in err and "Traceback" not in err
    assert trainer.vis is None and trainer.epochs_completed == 2


# -- 17: non-finite timeouts ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stop_timeout": math.inf},
        {"request_timeout": math.inf},
        {"request_timeout": (1.0, math.inf)},
        {"update_interval": math.nan},
        {"save_interval": math.inf},
    ],
)
def test_non_finite_timeouts_are_refused_in_the_constructor(kwargs):
    with pytest.raises(ValueError, match="positive finite number"):
        VisdomVisualizer(env="x", port=free_port(), **kwargs)


# -- 18: autostart on another loopback address ------------------------------------------------


def test_autostart_binds_the_loopback_address_asked_for(env_name):
    port = free_port()
    vis = VisdomVisualizer(env=env_name, server="http://127.0.0.2", port=port, autostart=True)
    try:
        assert server.probe("127.0.0.2", port) == "visdom"
        assert server.probe("127.0.0.1", port) == "free"  # nothing the client cannot reach
        vis.update_loss_graphs(0.0, {"G": 1.0}, {"D": 1.0})
    finally:
        vis.stop_thread()
        server.stop(port)
    wait_for(lambda: server.probe("127.0.0.2", port) == "free", 20, what="server stopped")


def test_autostart_refuses_a_port_held_by_something_else_and_leaves_nothing(env_name):
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.2", port))
        other.listen()
        with pytest.raises(ConnectionError, match="not a Visdom server") as caught:
            VisdomVisualizer(env=env_name, server="http://127.0.0.2", port=port, autostart=True)
        message = str(caught.value)
        # Before: "...choose another with --port.. Start one with `... --port <the held port>`".
        assert ".." not in message and f"visdom start --port {port}`" not in message
        proposed = int(re.search(r"visdom start --port (\d+)`", message).group(1))
        assert proposed != port and server.probe("127.0.0.2", proposed) == "free"
        assert f"e.g. --port {proposed} (free now)" in message
    assert server.read_record(port) is None
    assert server.probe("127.0.0.1", port) == "free"


def test_autostart_stops_a_server_it_started_but_cannot_use(env_name):
    """The managed server serves no base path: the env cannot be opened under '/vis'."""
    port = free_port()
    with pytest.raises(ConnectionError) as caught:
        VisdomVisualizer(env=env_name, server="http://127.0.0.2/vis", port=port, autostart=True)
    message = str(caught.value)
    assert f"a Visdom server was started on 127.0.0.2:{port}" in message
    assert "so it was stopped again" in message and "leave '/vis' out" in message
    assert server.read_record(port) is None
    wait_for(lambda: server.probe("127.0.0.2", port) == "free", 20, what="server stopped")


# -- 19: --login without its variables ---------------------------------------------------------


def test_login_without_credentials_fails_before_starting(monkeypatch, capsys):
    for var in ("VISDOM_USERNAME", "VISDOM_PASSWORD", "VISDOM_COOKIE"):
        monkeypatch.delenv(var, raising=False)
    port = free_port()
    code = main(["visdom", "start", "--host", "0.0.0.0", "--login", "--port", str(port)])
    assert code != 0
    err = capsys.readouterr().err
    assert "--login needs VISDOM_USERNAME and VISDOM_PASSWORD" in err
    assert server.read_record(port) is None  # no process was ever spawned
    assert server.probe("127.0.0.1", port) == "free"
    monkeypatch.setenv("VISDOM_USERNAME", "u")
    assert "VISDOM_PASSWORD" in server.login_problem(
        {"VISDOM_USERNAME": "u"}
    ) and "USERNAME" not in server.login_problem({"VISDOM_USERNAME": "u"})


# -- 20: square images in a paired dataset -----------------------------------------------------


def test_square_images_in_a_paired_dataset_warn_once_with_the_count(tmp_path, dataroot, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(dataroot, data)
    train = sorted((data / "train").iterdir())
    for path in train[:3]:
        Image.new("RGB", (32, 32), (200, 10, 10)).save(path)
    assert [p for p, _ in not_side_by_side(train)] == train[:3]
    cfg = tiny_training_config(tmp_path / "out", data, "square")
    Pix2pixTrainer(cfg, quicksetup=False)
    err = capsys.readouterr().err
    assert err.count("not twice as wide as tall") == 1
    assert f"3 of {len(train)} images in {data / 'train'}" in err
    assert "32x32" in err
