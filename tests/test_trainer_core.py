"""Trainer core: construction order, counters, one dashboard thread per run, env_url, close."""

from __future__ import annotations

import threading
import urllib.request

import pytest
import torch
from _support import tiny_training_config

from nectargan.trainers import Pix2pixTrainer, Trainer
from nectargan.trainers.progress import Progress
from nectargan.visualizer.visdom.transport import Endpoint
from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

BATCHES = 3


class ToyTrainer(Trainer):
    """A seconds-free trainer: 3 batches of 1x1x2x2 tensors, one linear map, every hook logged.

    ``marker`` is set after ``super().__init__()`` and used by ``prepare_data``:
    that only works when no hook runs before construction has finished.
    """

    def __init__(self, config, fail_at: int | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.fail_at = fail_at
        self.marker = "set in ToyTrainer.__init__"
        self.calls: list[str] = []
        self.seen: list[tuple[str, int, int, int]] = []  # (hook, epoch, completed, step)

    def prepare_data(self) -> None:
        self.calls.append(f"prepare_data:{self.marker}:{self.experiment_dir is None}")
        data = torch.utils.data.TensorDataset(
            torch.zeros(BATCHES, 1, 2, 2), torch.ones(BATCHES, 1, 2, 2)
        )
        self.train_loader = torch.utils.data.DataLoader(data, batch_size=1)

    def init_networks(self) -> None:
        self.calls.append("init_networks")
        self.net = torch.nn.Conv2d(1, 1, 1)

    def init_losses(self) -> None:
        self.calls.append(f"init_losses:{self.loss_manager is not None}")

    def init_optimizers(self) -> None:
        self.calls.append("init_optimizers")
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)

    def wrap_networks(self) -> None:
        self.calls.append("wrap_networks")

    def init_visualizer(self) -> None:
        self.calls.append("init_visualizer")
        super().init_visualizer()

    def _note(self, hook: str) -> None:
        self.seen.append((hook, self.current_epoch, self.epochs_completed, self.global_step))

    def on_epoch_start(self, **kwargs) -> None:
        self._note("start")

    def train_step(self, x, y, idx, **kwargs) -> None:
        if self.fail_at == self.global_step:
            raise RuntimeError("toy failure")
        self._note("step")
        loss = torch.nn.functional.l1_loss(self.net(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.vis is not None:
            x_axis = self.current_epoch + idx / BATCHES
            self.vis.update_loss_graphs(x_axis, {"G_L1": loss.item()}, {"D_real": 0.5})

    def on_epoch_end(self, **kwargs) -> None:
        self._note("end")


def toy_config(tmp_path, port: int | None = None, env: str = "main", **train) -> dict:
    cfg = tiny_training_config(
        tmp_path / "out", tmp_path, "toy", train={"epochs": 2, "epochs_decay": 0, **train}
    )
    if port is not None:
        cfg["visualizer"]["visdom"].update(enable=True, port=port, env_name=env, autostart=False)
    return cfg


def _visdom_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nectargan-visdom")]


def _count_calls(monkeypatch, obj, name: str) -> list[int]:
    """Count calls of ``obj.name`` (still calling the real method)."""
    calls: list[int] = []
    real = getattr(obj, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


# -- construction order ---------------------------------------------------------------------


def test_setup_runs_after_every_init_in_one_order(tmp_path):
    trainer = ToyTrainer(toy_config(tmp_path), fail_at=None)
    assert trainer.calls == [
        "prepare_data:set in ToyTrainer.__init__:True",  # data before the experiment dir
        "init_networks",
        "init_losses:True",
        "init_optimizers",
        "wrap_networks",
        "init_visualizer",
    ]
    assert trainer.experiment_dir.name == "toy_v1" and trainer.fail_at is None
    with pytest.raises(RuntimeError, match="setup.. has already run"):
        trainer.setup()


def test_quicksetup_false_builds_in_memory_only(tmp_path):
    trainer = ToyTrainer(toy_config(tmp_path), quicksetup=False)
    assert "init_visualizer" not in trainer.calls and trainer.calls[-1] == "wrap_networks"
    assert trainer.experiment_dir is None and not (tmp_path / "out").exists()
    trainer.train_paired(0)
    assert trainer.epochs_completed == 1


def test_pix2pix_subclass_prepare_data_may_use_its_own_init(tmp_path, dataroot):
    class FirstPairs(Pix2pixTrainer):
        """Trains on the first ``n`` training pairs only."""

        def __init__(self, config, n: int) -> None:
            super().__init__(config)
            self.n = n

        def prepare_data(self) -> None:
            super().prepare_data()
            subset = torch.utils.data.Subset(self.train_loader.dataset, range(self.n))
            self.train_loader = torch.utils.data.DataLoader(subset, batch_size=4)

    cfg = tiny_training_config(tmp_path / "out", dataroot, "first", train={"epochs_decay": 0})
    trainer = FirstPairs(cfg, n=8)
    assert len(trainer.train_loader) == 2 and trainer.experiment_dir.name == "first_v1"
    trainer.fit()
    assert (trainer.epochs_completed, trainer.global_step) == (1, 2)


# -- counters ----------------------------------------------------------------------------------


def test_counters_advance_once_per_step_and_epoch(tmp_path):
    trainer = ToyTrainer(toy_config(tmp_path))
    trainer.fit()
    assert trainer.seen == [
        ("start", 0, 0, 0),
        ("step", 0, 0, 0),
        ("step", 0, 0, 1),
        ("step", 0, 0, 2),
        ("end", 0, 1, 3),  # on_epoch_end already sees its epoch as completed
        ("start", 1, 1, 3),
        ("step", 1, 1, 3),
        ("step", 1, 1, 4),
        ("step", 1, 1, 5),
        ("end", 1, 2, 6),
    ]
    trainer.train_paired(0)  # re-training an earlier epoch never moves the count back
    assert (trainer.current_epoch, trainer.epochs_completed, trainer.global_step) == (0, 2, 9)
    for name in ("epochs_completed", "global_step", "current_epoch"):
        with pytest.raises(AttributeError):
            setattr(trainer, name, 0)


def test_progress_refuses_bad_values():
    p = Progress()
    with pytest.raises(ValueError, match="epoch: expected a 0-based epoch index >= 0, got -1"):
        p.begin_epoch(-1)
    with pytest.raises(ValueError, match="checkpoint global_step: expected an integer >= 0"):
        p.restore(2, -5)
    p.restore(3, 30)
    assert (p.current_epoch, p.epochs_completed, p.global_step) == (3, 3, 30)


# -- one dashboard thread per run --------------------------------------------------------------


def test_fit_starts_one_thread_and_saves_once(tmp_path, visdom_server, env_name, monkeypatch):
    trainer = ToyTrainer(toy_config(tmp_path, visdom_server.port, env_name, epochs=3))
    closes = _count_calls(monkeypatch, trainer.vis, "close")
    threads: set[int] = set()
    trainer.step_observers.append(lambda t, idx: threads.update(x.ident for x in _visdom_threads()))
    trainer.fit()
    assert len(threads) == 1  # the same thread through all three epochs
    assert trainer.dashboard.thread_starts == 1 and trainer.vis.stats.saves == 1
    assert not trainer.vis.is_threaded and not _visdom_threads() and closes
    xs, _ = visdom_server.line_series("loss_G", env_name)["G_L1"]
    assert xs == pytest.approx([e + i / BATCHES for e in range(3) for i in range(BATCHES)])


def test_fit_stops_the_thread_on_error(tmp_path, visdom_server, env_name, monkeypatch):
    trainer = ToyTrainer(toy_config(tmp_path, visdom_server.port, env_name), fail_at=4)
    closes = _count_calls(monkeypatch, trainer.vis, "close")
    with pytest.raises(RuntimeError, match="toy failure"):
        trainer.fit()
    assert trainer.dashboard.thread_starts == 1 and trainer.vis.stats.saves == 1
    assert not _visdom_threads() and closes
    # the points sent before the failure reached the server
    xs, _ = visdom_server.line_series("loss_G", env_name)["G_L1"]
    assert xs == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_per_epoch_train_paired_keeps_the_thread_until_the_last_epoch(
    tmp_path, visdom_server, env_name
):
    trainer = ToyTrainer(toy_config(tmp_path, visdom_server.port, env_name))
    trainer.train_paired(0)
    assert trainer.vis.is_threaded and trainer.vis.stats.saves == 0  # left running
    trainer.train_paired(1)  # the last epoch: training is over
    assert not trainer.vis.is_threaded and not _visdom_threads()
    assert trainer.dashboard.thread_starts == 1 and trainer.vis.stats.saves == 1


def test_close_and_inline_epochs_stop_a_running_thread(tmp_path, visdom_server, env_name):
    trainer = ToyTrainer(toy_config(tmp_path, visdom_server.port, env_name, epochs=3))
    trainer.train_paired(0)
    trainer.train_paired(1, multithreaded=False)  # stops the thread, this epoch sends inline
    assert not trainer.vis.is_threaded and trainer.vis.stats.saves == 1
    trainer.train_paired(0)
    assert trainer.vis.is_threaded and trainer.dashboard.thread_starts == 2
    trainer.close()
    assert not trainer.vis.is_threaded and not _visdom_threads()


# -- env_url ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "port", "env", "url"),
    [
        ("localhost", 8097, "main", "http://localhost:8097/env/main"),
        ("example.org", 80, "main", "http://example.org:80/env/main"),  # bare host, not None
        ("https://Vis.Example.org", 443, "a", "https://vis.example.org:443/env/a"),
        ("https://example.org/visdom/", 8443, "x", "https://example.org:8443/visdom/env/x"),
        ("http://[::1]", 8097, "run 1/α#?", "http://[::1]:8097/env/run%201%2F%CE%B1%23%3F"),
    ],
)
def test_env_url_keeps_scheme_host_base_path_and_quotes(server, port, env, url):
    assert Endpoint.parse(server, port).env_url(env) == url


def test_env_url_opens_that_env_on_a_real_server(visdom_server):
    env = "t_env url/α#1?"
    vis = VisdomVisualizer(env=env, server="127.0.0.1", port=visdom_server.port)
    assert vis.env_url == f"http://127.0.0.1:{visdom_server.port}/env/t_env%20url%2F%CE%B1%231%3F"
    vis.update_text("here")  # the env now holds a window, so the server lists it
    with urllib.request.urlopen(vis.env_url, timeout=10) as page:
        html = page.read().decode()
    assert f"ACTIVE_ENV = '{env}'" in html
    vis.close()


def test_trainer_dashboard_url_is_the_env_url(tmp_path, visdom_server):
    cfg = toy_config(tmp_path, visdom_server.port, "t_dashboard url")
    cfg["visualizer"]["visdom"]["server"] = "127.0.0.1"
    trainer = ToyTrainer(cfg)
    assert trainer.dashboard_url == trainer.vis.env_url
    assert trainer.dashboard_url == f"http://127.0.0.1:{visdom_server.port}/env/t_dashboard%20url"
    trainer.close()
