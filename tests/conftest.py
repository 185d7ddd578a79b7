"""Fixtures every test module can use: a real Visdom server and private ones."""

from __future__ import annotations

import os
import signal

import pytest
from _support import TestServer, launch_chromium


@pytest.fixture(autouse=True, scope="session")
def _sigint_not_ignored():
    """Give the tests (and the training processes they start) a working Ctrl-C.

    A shell starts background jobs (``.ci/run &``) with SIGINT ignored, and an
    ignored signal is inherited through exec: the trainer would then never see
    the SIGINT a test sends it. Installing Python's handler here means every
    child starts with the default disposition again.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_home(tmp_path_factory):
    """Pid files, logs and envs of managed servers go to a temp dir, never the user's."""
    home = tmp_path_factory.mktemp("nectargan-home")
    old = os.environ.get("NECTARGAN_HOME")
    os.environ["NECTARGAN_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("NECTARGAN_HOME", None)
    else:
        os.environ["NECTARGAN_HOME"] = old


@pytest.fixture(scope="session")
def visdom_server(tmp_path_factory):
    """One real Visdom server on a free loopback port, shared by the session."""
    srv = TestServer(tmp_path_factory.mktemp("visdom") / "envs").start()
    yield srv
    srv.stop()


@pytest.fixture
def private_visdom_server(tmp_path):
    """A server of the test's own, for tests that kill or restart it."""
    srv = TestServer(tmp_path / "envs").start()
    yield srv
    srv.stop()


@pytest.fixture
def env_name(request) -> str:
    """A Visdom env name unique to the test, so tests sharing a server never collide."""
    return "t_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:60]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium for the browser tests (Playwright drives it)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture(scope="session")
def dataroot(tmp_path_factory):
    """A tiny synthetic paired dataset, shared read-only: 40 pairs of 32 px (32/4/4 split)."""
    from nectargan.dataset import generate_synthetic_dataset

    return generate_synthetic_dataset(tmp_path_factory.mktemp("data") / "synth", n=40, size=32)


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory, dataroot):
    """A finished 2-epoch run of a tiny generator (features 8, n_downs 4) on 32 px pairs."""
    from _support import tiny_training_config

    from nectargan.trainers import Pix2pixTrainer

    cfg = tiny_training_config(
        tmp_path_factory.mktemp("tiny_run"),
        dataroot,
        "tiny",
        train={"generator": {"features": 8, "n_downs": 4}},
    )
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    trainer.close()
    return trainer.experiment_dir


@pytest.fixture(scope="session")
def tiny_onnx(tiny_experiment, tmp_path_factory):
    """``nectargan export`` of ``tiny_experiment`` (dynamic axes, default opset)."""
    pytest.importorskip("onnxruntime")
    from nectargan.cli.main import main

    path = tmp_path_factory.mktemp("tiny_onnx") / "tiny.onnx"
    assert main(["export", "--experiment", str(tiny_experiment), "--output", str(path)]) == 0
    return path
