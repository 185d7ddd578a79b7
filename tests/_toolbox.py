"""Helpers for the Toolbox's tests: an in-process app (Starlette's TestClient) and a real
``nectargan toolbox`` process on a free loopback port."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import httpx
from _support import free_port, wait_for

with warnings.catch_warnings():  # starlette 1.x suggests httpx2, which is not packaged here yet
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from nectargan.toolbox.app import create_app
from nectargan.toolbox.context import ToolboxOptions

TOKEN = "0123456789abcdef" * 3
BASE = "http://127.0.0.1:8765"
URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/)\?token=([0-9a-f]+)")


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "output").mkdir(parents=True, exist_ok=True)
    return root


def toolbox_app(tmp_path: Path, roots: list[Path] | None = None, **options):
    """A Toolbox app on ``roots`` (default: ``tmp_path/root``), state in ``tmp_path/state``."""
    opts = ToolboxOptions(
        roots=roots or [make_root(tmp_path)],
        state_dir=tmp_path / "state",
        token=TOKEN,
        background=options.pop("background", False),
        **options,
    )
    return create_app(opts)


def api_client(app) -> TestClient:
    """A script's view: the token in the Authorization header, no cookie, no Origin."""
    return TestClient(app, base_url=BASE, headers={"Authorization": f"token {TOKEN}"})


def browser_client(app) -> TestClient:
    """A browser's view: the token exchanged for the cookie, Origin sent on every request."""
    client = TestClient(app, base_url=BASE, headers={"Origin": BASE})
    answer = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def write_experiment(output: Path, name: str, epochs_done: int = 2, total: int = 3) -> Path:
    """A small finished-looking experiment folder (config, val metrics, examples), no torch."""
    from nectargan.runs import records

    exp = output / name
    (exp / "examples").mkdir(parents=True)
    (exp / "checkpoints").mkdir()
    config = {"train": {"epochs": total, "epochs_decay": 0}}
    (exp / "config.json").write_text(json.dumps(config))
    rows = [
        {"epoch": e, "l1": 0.3 / e, "psnr": 10.0 + e, "ssim": 0.1 * e, "images": 4, "seconds": 1.0}
        for e in range(1, epochs_done + 1)
    ]
    records.write_val_metrics(exp, rows, split="val", best=rows[-1] if rows else None)
    for e in range(1, epochs_done + 1):
        (exp / "checkpoints" / f"epoch_{e:04d}.pt").write_bytes(b"x")
        (exp / "examples" / f"epoch_{e:04d}_0.png").write_bytes(PNG_1PX)
    return exp


# a valid 1x1 PNG
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class ToolboxProcess:
    """``python -m nectargan toolbox`` as a user starts it, in a session of its own."""

    def __init__(
        self, root: Path, state_dir: Path, log: Path, extra_roots: list[Path] | None = None
    ) -> None:
        self.port = free_port()
        self.log = log
        cmd = [sys.executable, "-m", "nectargan", "toolbox", "--root", str(root)]
        for extra in extra_roots or []:
            cmd += ["--root", str(extra)]
        cmd += ["--port", str(self.port), "--state-dir", str(state_dir)]
        self.proc = subprocess.Popen(
            cmd,
            stdout=open(log, "w"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        match = wait_for(lambda: URL_RE.search(log.read_text()), 30, what="the Toolbox's URL")
        self.base, self.token = match.group(1).rstrip("/"), match.group(2)
        self.client = httpx.Client(
            base_url=self.base, headers={"Authorization": f"token {self.token}"}, timeout=10
        )
        wait_for(self._answers, 30, what="the Toolbox answering")

    def _answers(self) -> bool:
        try:
            return self.client.get("/api/status").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> str:
        """Ctrl-C, as in its terminal; returns what it printed."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)
        self.client.close()
        return self.log.read_text()


def toolbox_page(browser, box, size: tuple[int, int] = (1280, 900)) -> tuple[object, list[str]]:
    """A new browser page and the list it fills with every request that leaves the
    Toolbox's origin (the Toolbox must load nothing from elsewhere)."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    foreign: list[str] = []
    page.on("request", lambda r: r.url.startswith(box.base) or foreign.append(r.url))
    return page, foreign
