"""The Toolbox's Review page on a 1M-step loss log: how long until it is drawn.

Writes a run whose loss log holds 1,000,000 steps of four losses (G_GAN, G_L1,
D_real, D_fake; 4M records in ten segments), then measures

* the server: ``GET /api/review/runs/0/<run>`` (read the log with the review
  package, bucket means to 400 points per series, JSON), in-process: the first
  request parses the log, later ones answer from the payload cache (the files
  did not change);
* the browser: a real ``nectargan toolbox`` and headless Chromium opening
  ``/review?run=0/<run>``; the page's own figure (fetch + draw, ``data-drawn-ms``)
  and the wall time from navigation until the charts are in the page.

Target: <= 1 s to a drawn page. Run:
``PYTHONPATH=. .venv/bin/python bench/toolbox_review.py [--rounds N] [--steps N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _support import launch_chromium  # noqa: E402
from _toolbox import TOKEN, ToolboxProcess, api_client, toolbox_app  # noqa: E402

from nectargan.losses.loss_log import LossLog  # noqa: E402

LOSSES = (("G_GAN", "G"), ("G_L1", "G"), ("D_real", "D"), ("D_fake", "D"))


def write_run(folder: Path, steps: int, per: int = 100_000) -> None:
    folder.mkdir(parents=True)
    log = LossLog(folder)
    for name, tag in LOSSES:
        log.describe_loss(name, {"tags": [tag], "weight": 1.0, "schedule": None})
    rng = np.random.default_rng(0)
    for start in range(0, steps, per):
        step = np.arange(start, min(start + per, steps))
        cols = {
            "epoch": (step / 10_000).tolist(),
            "step": step.tolist(),
            "raw": rng.random(len(step)).tolist(),
            "weight": [1.0] * len(step),
        }
        log.write_segment({name: dict(cols) for name, _ in LOSSES})
    log.write_index()


def time_server(tmp: Path, rounds: int) -> tuple[list[float], int]:
    client = api_client(toolbox_app(tmp / "app", roots=[tmp / "root"]))
    out, size = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        answer = client.get("/api/review/runs/0/long")
        out.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text
        size = len(answer.content)
    return out, size


def time_browser(tmp: Path, rounds: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    box = ToolboxProcess(tmp / "root", tmp / "state", tmp / "toolbox.log")
    walls, drawn = [], []
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{box.base}/?token={box.token}")
            for _ in range(rounds):
                start = time.perf_counter()
                page.goto(f"{box.base}/review?run=0/long")
                page.wait_for_function("() => document.body.dataset.drawnMs", timeout=60_000)
                walls.append(time.perf_counter() - start)
                assert page.locator("#rv-losses svg path").count() == len(LOSSES)
                drawn.append(float(page.evaluate("document.body.dataset.drawnMs")) / 1e3)
            browser.close()
    finally:
        box.stop()
    return walls, drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1_000_000)
    args = parser.parse_args()
    assert TOKEN
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "root" / "output").mkdir(parents=True)
        write_run(tmp / "root" / "output" / "long", args.steps)
        server, size = time_server(tmp, args.rounds)
        walls, drawn = time_browser(tmp, args.rounds)
    print(f"Machine: {cpu_model()}")
    print(f"loss log: {args.steps:,} steps x {len(LOSSES)} losses; rounds: {args.rounds}")
    show("server payload", server, f", {size / 1e3:.0f} kB of JSON")
    show("browser, fetch + draw", drawn)
    show("browser, navigation to drawn", walls)


def show(what: str, seconds: list[float], extra: str = "") -> None:
    """The first (cold: the log is parsed) and the rest (warm: the payload cache)."""
    warm = seconds[1:] or seconds
    print(
        f"{what}: first {seconds[0]:.3f} s; then median {statistics.median(warm):.3f} s "
        f"(max {max(warm):.3f}){extra}"
    )


if __name__ == "__main__":
    main()
