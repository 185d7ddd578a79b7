"""The Toolbox's Review page on a 1M-step loss log: how long until it is drawn.

Writes a run whose loss log holds 1,000,000 steps of four losses (G_GAN, G_L1,
D_real, D_fake; 4M records in ten segments), then measures

* the server: ``GET /api/review/runs/0/<run>`` (read the log with the review
  package, bucket means to 400 points per series, JSON), in-process: the first
  request parses the log, later ones answer from the payload cache (the files
  did not change);
* the browser: a real ``nectargan toolbox`` and headless Chromium opening
  ``/review?run=0/<run>``; the page's own figure (fetch + draw, ``data-drawn-ms``)
  and the wall time from navigation until the charts are in the page; once with
  the Toolbox's lazy pages imported (its warm-up), once right after its start;
* a run from before column files (``loss_log/*.columns`` deleted): the first
  read parses the JSON and writes them, the next (a new process) reads them;
* what a column file adds to the flush that closes a segment (100k records of
  each loss): writing the JSON segment against writing its column file.

The trainer writes each segment's column file, so the first visit reads those.
Target: <= 1 s to a drawn page. Run:
``PYTHONPATH=. .venv/bin/python bench/toolbox_review.py [--rounds N] [--steps N]``.
"""

from __future__ import annotations

import argparse
import os
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

from nectargan.losses import loss_columns  # noqa: E402
from nectargan.losses.loss_log import (  # noqa: E402
    LossLog,
    _clean_columns,
    atomic_write_json,
    write_columns,
)
from nectargan.toolbox import review_data  # noqa: E402

LOSSES = (("G_GAN", "G"), ("G_L1", "G"), ("D_real", "D"), ("D_fake", "D"))


def segment_records(rng: np.random.Generator, start: int, stop: int) -> dict[str, dict]:
    step = np.arange(start, stop)
    cols = {
        "epoch": (step / 10_000).tolist(),
        "step": step.tolist(),
        "raw": rng.random(len(step)).tolist(),
        "weight": [1.0] * len(step),
    }
    return {name: dict(cols) for name, _ in LOSSES}


def write_run(folder: Path, steps: int, per: int = 100_000) -> None:
    folder.mkdir(parents=True)
    log = LossLog(folder)
    for name, tag in LOSSES:
        log.describe_loss(name, {"tags": [tag], "weight": 1.0, "schedule": None})
    rng = np.random.default_rng(0)
    for start in range(0, steps, per):
        log.write_segment(segment_records(rng, start, min(start + per, steps)))
    log.write_index()


def time_flush_parts(tmp: Path, rounds: int = 3) -> tuple[float, float]:
    """Median seconds to write one 100k-step segment's JSON, and its column file."""
    body = {
        name: _clean_columns(cols)
        for name, cols in segment_records(np.random.default_rng(1), 0, 100_000).items()
    }
    path = tmp / "flush" / "loss_log" / "000001.json"
    json_s, columns_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        atomic_write_json(path, {"segment": 1, "run": 1, "losses": body})
        json_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert write_columns(path, 1, body) is not None
        columns_s.append(time.perf_counter() - start)
    return statistics.median(json_s), statistics.median(columns_s)


def time_old_run(tmp: Path) -> tuple[float, float]:
    """A run without column files: the first payload (parse + write them), then a fresh
    process's first payload (the payload cache emptied; the column files read)."""
    folder = tmp / "root" / "output" / "long"
    for path in (folder / "loss_log").glob("*" + loss_columns.SUFFIX):
        path.unlink()
    out = []
    for _ in range(2):
        review_data.CACHE = review_data.PayloadCache()
        start = time.perf_counter()
        review_data.one_run(folder)
        out.append(time.perf_counter() - start)
    return out[0], out[1]


def time_server(tmp: Path, rounds: int) -> tuple[list[float], float, int]:
    """Wall seconds per request, the first request's CPU seconds (this process, all its
    threads: steadier than wall time on a shared machine), the payload's size."""
    client = api_client(toolbox_app(tmp / "app", roots=[tmp / "root"]))
    client.get("/api/review/compare")  # import the lazy pages first, as the warm-up does
    out, first_cpu, size = [], 0.0, 0
    for _ in range(rounds):
        cpu, start = time.process_time(), time.perf_counter()
        answer = client.get("/api/review/runs/0/long")
        out.append(time.perf_counter() - start)
        first_cpu = first_cpu or time.process_time() - cpu
        assert answer.status_code == 200, answer.text
        size = len(answer.content)
    return out, first_cpu, size


def time_browser(
    tmp: Path, rounds: int, pages_imported: bool
) -> tuple[list[float], list[float], list[float]]:
    """Per visit: navigation to drawn, the page's fetch + draw, and the HTML page itself.

    ``pages_imported``: first ask for a lazy page's route, as the Toolbox's own warm-up
    does 3 s after start, so the first visit measures the review, not the import of the
    Review page's module (numpy, the config); without it, the first visit comes right
    after start and pays that import too.
    """
    from playwright.sync_api import sync_playwright

    state = tmp / f"state-{pages_imported}"
    box = ToolboxProcess(tmp / "root", state, tmp / f"toolbox-{pages_imported}.log")
    walls, drawn, document = [], [], []
    try:
        if pages_imported:
            assert box.client.get("/api/review/compare").status_code == 400  # no runs named
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
                document.append(page.evaluate(NAVIGATION_RESPONSE_END) / 1e3)
            browser.close()
    finally:
        box.stop()
    return walls, drawn, document


NAVIGATION_RESPONSE_END = "performance.getEntriesByType('navigation')[0].responseEnd"


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
        sizes = log_sizes(tmp / "root" / "output" / "long" / "loss_log")
        server, server_cpu, size = time_server(tmp, args.rounds)
        walls, drawn, document = time_browser(tmp, args.rounds, pages_imported=True)
        at_start, _, at_start_document = time_browser(tmp, 1, pages_imported=False)
        old_first, old_next = time_old_run(tmp)
        json_s, columns_s = time_flush_parts(tmp)
    print(f"Machine: {cpu_model()}; load average {os.getloadavg()[0]:.1f}")
    print(f"loss log: {args.steps:,} steps x {len(LOSSES)} losses; rounds: {args.rounds}")
    print(f"on disk: JSON segments {sizes[0] / 1e6:.0f} MB, column files {sizes[1] / 1e6:.0f} MB")
    show("server payload", server, f", {size / 1e3:.0f} kB of JSON; first: CPU {server_cpu:.3f} s")
    show("browser, fetch + draw", drawn)
    show("browser, navigation to drawn", walls)
    show("browser, the HTML page (navigation to its last byte)", document)
    print(
        f"browser, first visit right after start (the Review page's module imported by it): "
        f"navigation to drawn {at_start[0]:.3f} s, of which the HTML page {at_start_document[0]:.3f} s"
    )
    print(
        f"run without column files: first payload {old_first:.3f} s (parse, write them); "
        f"a new process's first {old_next:.3f} s"
    )
    print(
        f"closing a 100k-step segment: JSON {json_s:.3f} s, its column file {columns_s:.3f} s "
        f"(+{100 * columns_s / json_s:.0f}%)"
    )


def log_sizes(folder: Path) -> tuple[int, int]:
    """Bytes of the JSON segments and of their column files."""
    json_bytes = sum(p.stat().st_size for p in folder.glob("*.json"))
    column_bytes = sum(p.stat().st_size for p in folder.glob("*" + loss_columns.SUFFIX))
    return json_bytes, column_bytes


def show(what: str, seconds: list[float], extra: str = "") -> None:
    """The first (cold: the log is parsed) and the rest (warm: the payload cache)."""
    warm = seconds[1:] or seconds
    print(
        f"{what}: first {seconds[0]:.3f} s; then median {statistics.median(warm):.3f} s "
        f"(max {max(warm):.3f}){extra}"
    )


if __name__ == "__main__":
    main()
