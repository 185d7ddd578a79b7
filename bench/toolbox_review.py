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
``PYTHONPATH=. .venv/bin/python bench/toolbox_review.py [--rounds N] [--steps N]``;
``--run-page``: only the Toolbox's Run page of that run (``RunWatch``'s first payload in a
fresh process, its RSS), with column files and without.
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


RUN_PAGE_PROBE = """
import json, resource, sys, time
from pathlib import Path
from nectargan.toolbox.run_watch import RunWatch
start = time.perf_counter()
watch = RunWatch(Path(sys.argv[1]))  # kept: its curves are what the Toolbox holds
payload = json.dumps(watch.read())
seconds = time.perf_counter() - start
rss = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps([seconds, rss, peak, len(payload)]))
"""


def time_run_page(folder: Path, rounds: int) -> list[tuple[float, int, int, int]]:
    """The Run page's first payload in a fresh process (as a Toolbox just started opens it):
    seconds, RSS and peak RSS after it, payload bytes; once per round."""
    import json
    import subprocess

    out = []
    for _ in range(rounds):
        probe = [sys.executable, "-c", RUN_PAGE_PROBE, str(folder)]
        answer = subprocess.run(probe, capture_output=True, text=True, check=True)
        out.append(tuple(json.loads(answer.stdout.splitlines()[-1])))
    return out


def show_run_page(what: str, figures: list[tuple[float, int, int, int]]) -> None:
    seconds = [f[0] for f in figures]
    print(
        f"Run page, first payload ({what}): median {statistics.median(seconds):.3f} s "
        f"(min {min(seconds):.3f}, max {max(seconds):.3f}); RSS after "
        f"{figures[-1][1] / 2**20:.0f} MB, peak {figures[-1][2] / 2**20:.0f} MB; "
        f"payload {figures[-1][3] / 1e3:.0f} kB"
    )


def run_page_only(steps: int, rounds: int) -> None:
    """``--run-page``: the Run page's first payload, with column files and without."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "long"
        write_run(folder, steps)
        with_columns = time_run_page(folder, rounds)
        for path in (folder / "loss_log").glob("*" + loss_columns.SUFFIX):
            path.unlink()
        without = time_run_page(folder, 1)
    print(f"Machine: {cpu_model()}; load average {os.getloadavg()[0]:.1f}")
    print(f"loss log: {steps:,} steps x {len(LOSSES)} losses; rounds: {rounds}")
    show_run_page("column files", with_columns)
    show_run_page("no column files: the first parses the JSON", without)


NAVIGATION_RESPONSE_END = "performance.getEntriesByType('navigation')[0].responseEnd"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--run-page", action="store_true", help="only the Run page's figures")
    args = parser.parse_args()
    assert TOKEN
    if args.run_page:
        run_page_only(args.steps, args.rounds)
        return
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
