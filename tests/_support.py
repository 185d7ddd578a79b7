"""Shared test helpers: real Visdom servers on free loopback ports, polling with deadlines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

from nectargan.losses.loss_log import LossLog
from nectargan.visualizer.visdom import server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAUNCHER_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def spawn_logged(cmd: list[str], log_stem: Path, **env_extra: str) -> subprocess.Popen:
    """``cmd`` in a session of its own (as from a terminal), output in ``<stem>.out/.err``.

    Launcher variables the test runner may carry are dropped, so a child is never
    mistaken for a rank of some other job.
    """
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS} | env_extra
    return subprocess.Popen(
        cmd,
        stdout=open(f"{log_stem}.out", "w"),  # noqa: SIM115 (closed with the process)
        stderr=open(f"{log_stem}.err", "w"),  # noqa: SIM115
        env=env,
        start_new_session=True,
    )


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what or predicate}: last={last!r}"
    )


class TestServer:
    """A real Visdom server process on 127.0.0.1 with its own env dir."""

    __test__ = False  # not a test class

    def __init__(
        self, env_dir: Path, port: int | None = None, allow_hosts: tuple[str, ...] = ()
    ) -> None:
        self.port = port or free_port()
        self.allow_hosts = allow_hosts
        self.env_dir = Path(env_dir)
        self.log_path = self.env_dir.parent / f"visdom-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def options(self) -> server.ServerOptions:
        return server.ServerOptions(
            port=self.port, host="127.0.0.1", env_dir=self.env_dir, allow_hosts=self.allow_hosts
        )

    def start(self, timeout: float = 30.0) -> TestServer:
        self.proc = server.spawn(self.options, self.log_path)
        if not server.wait_until_answering(self.options, timeout, pid=self.proc.pid):
            self.kill()
            raise RuntimeError(
                f"test Visdom server did not start: {self.log_path.read_text()[-2000:]}"
            )
        return self

    def kill(self) -> None:
        """Hard stop (SIGKILL), as a crashed server would go away."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        wait_for(
            lambda: server.probe("127.0.0.1", self.port, timeout=0.2) == "free",
            10,
            what="port freed",
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def client(self, env: str = "main"):
        import visdom

        return visdom.Visdom(
            server="http://127.0.0.1",
            port=self.port,
            env=env,
            use_incoming_socket=False,
            raise_exceptions=True,
        )

    def window(self, win: str, env: str) -> dict | None:
        """What the server holds for a window, decoded; None when it does not exist."""
        raw = self.client(env).get_window_data(win, env=env)
        if not raw:
            return None
        data = json.loads(raw)
        return data or None

    def line_series(self, win: str, env: str) -> dict[str, tuple[list, list]]:
        """``{trace name: (xs, ys)}`` of a line window."""
        data = self.window(win, env)
        if data is None:
            return {}
        out: dict[str, tuple[list, list]] = {}
        for trace in data["content"]["data"]:
            xs, ys = out.setdefault(trace.get("name", ""), ([], []))
            xs.extend(trace.get("x", []))
            ys.extend(trace.get("y", []))
        return out


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright):
    """Debian's Chromium, headless, with the flags that work as root on a closed network."""
    import os
    import shutil

    path = shutil.which("chromium") or CHROMIUM
    if not os.path.exists(path):
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)


def open_env_page(browser, server: TestServer, env: str, viewport: tuple[int, int]):
    """A Chromium page on ``env`` of ``server``, loaded, and the list of its failed requests.

    The list fills as the page runs: URLs that failed and responses with status >= 400.
    """
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    page.goto(f"{server.url}/env/{env}", wait_until="load", timeout=30_000)
    return page, failed


def tiny_training_config(output_dir, dataroot, name: str, **sections) -> dict:
    """A seconds-long training on 32 px images; ``sections`` are deep-merged over it."""
    cfg = {
        "common": {"output_directory": str(output_dir), "experiment_name": name},
        "dataloader": {
            "dataroot": None if dataroot is None else str(dataroot),
            "load_size": 32,
            "crop_size": 32,
            "batch_size": 4,
        },
        "train": {
            "epochs": 1,
            "epochs_decay": 1,
            "generator": {"features": 8, "n_downs": 5},
            "discriminator": {"base_channels": 8, "max_channels": 32, "n_layers": 2},
        },
        "save": {"num_examples": 2},
        "visualizer": {"visdom": {"enable": False, "update_interval": 0.2}},
    }
    deep_update(cfg, sections)
    return cfg


def tiny_upstream_config(output_dir, dataroot, name: str, epochs: int = 1, decay: int = 0) -> dict:
    """A seconds-long run in upstream NectarGAN's config layout (its n_downs 3: 5 halvings)."""
    schedule = {"epochs": epochs, "epochs_decay": decay, "initial": 0.0002, "target": 0.0}
    return {
        "config": {
            "config_type": "pix2pix",
            "common": {
                "device": "cpu",
                "output_directory": str(output_dir),
                "experiment_name": name,
            },
            "dataloader": {
                "dataroot": str(dataroot),
                "batch_size": 8,
                "load": {"input_nc": 3, "load_size": 32, "crop_size": 32},
            },
            "train": {
                "generator": {"features": 8, "n_downs": 3, "learning_rate": schedule},
                "discriminator": {"n_layers": 2, "base_channels": 8, "max_channels": 32},
                "loss": {"lambda_l1": 100.0, "lambda_sobel": 1.0, "lambda_laplacian": 1.0},
            },
            "save": {"model_save_rate": 1, "example_save_rate": 1, "num_examples": 1},
            "visualizer": {"visdom": {"enable": False, "update_frequency": 2}},
        }
    }


def deep_update(target: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            deep_update(target.setdefault(key, {}), value)
        else:
            target[key] = value


def write_config(directory, cfg: dict):
    """``cfg`` as ``directory/config.json``, for the command line's ``--config``."""
    path = directory / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def write_long_log(exp_dir: Path, n: int = 50_000, per: int = 10_000) -> None:
    """A long loss log: two losses of ``n`` records each (100k points), in segments of ``per``.

    Shared by tests/test_review.py and bench/former_test_bounds.py (which times its replay).
    """
    log = LossLog(exp_dir)
    for name, tags in (("G_L1", ["G"]), ("D_real", ["D"])):
        log.describe_loss(name, {"tags": tags, "weight": 1.0, "schedule": None})
    rng = np.random.default_rng(0)
    for start in range(0, n, per):
        steps = list(range(start, start + per))
        cols = {
            "epoch": [s / 1000 for s in steps],
            "step": steps,
            "raw": rng.random(per).tolist(),
            "weight": [1.0] * per,
        }
        log.write_segment({"G_L1": cols, "D_real": dict(cols)})
    log.write_index()


def textured_image(seed: int, side: int, mode: str = "RGB", step: int = 8, noise: int = 20):
    """An asymmetric, textured ``side`` x ``side`` picture: flips, crops and colour ops all show."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:side, 0:side]
    arr = np.stack([xs * step, ys * step, (xs * ys) % 256], -1)
    arr = arr + rng.integers(0, noise, (side, side, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).convert(mode)


class _Refs(HTMLParser):
    """Every URL the page would load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href", "srcset", "data") and v]


def local_refs(html_path: Path) -> list[Path]:
    """The files the page references; fails on anything that is not a relative local path."""
    parser = _Refs()
    text = html_path.read_text(encoding="utf-8")
    parser.feed(text)
    assert not parser.tags & {"script", "link", "iframe", "object"}
    assert "url(" not in text and "@import" not in text  # no CSS-loaded resources
    paths = []
    for ref in parser.refs:
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc and not ref.startswith("/"), ref
        path = (html_path.parent / unquote(parts.path)).resolve()
        assert path.is_relative_to(html_path.parent.resolve()), ref
        assert path.is_file(), ref
        paths.append(path)
    return paths
