"""What the live dashboard costs a training run, read from CPU accounting.

Why this and not wall-time rounds: on 2 shared cores, rounds of training with the
dashboard on and off spread by tens of percent (docs/benchmarks.md), far more than
the 1% the dashboard may cost. CPU time is counted by the kernel per thread and per
process, so it hardly depends on what else the machine runs. This script trains
with the real ``Trainer.fit()`` and a real loopback Visdom server and measures the
three places the dashboard spends time:

- on the training thread: ``Trainer.dashboard_call`` (snapshot the triplet, queue
  the points), wall time, since the step waits for it;
- the dashboard's own thread (``nectargan-visdom``: render, PNG-encode, HTTP), CPU;
- the Visdom server process (parse, store, save the env), CPU.

Each is put beside the training's own time between two display steps
(``update_frequency`` x the median step). "Worst case" counts every CPU second
of the thread and the server as a whole second the training waits, which is what
happens when it preempts one of the step's threads and the other waits at a
barrier; "CPU share" divides by the training's CPU instead.

``--browser`` keeps headless Chromium open on the env page throughout, as a user
watching does: the server then also pushes every update to the page, and the
browser's own CPU (it may or may not run on the training machine) is reported apart.

Run: ``PYTHONPATH=. .venv/bin/python bench/dashboard_cost.py`` (``--configs default demo``,
``--displays N``, ``--browser``, ``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import cpu_model, positive_int, process_cpu_s, visdom_server_process

from nectargan.config import Config
from nectargan.dataset import generate_synthetic_dataset
from nectargan.trainers import Pix2pixTrainer
from nectargan.visualizer.visdom.engine import Worker

PACKAGED = Path(__file__).resolve().parent.parent / "nectargan" / "config"


class Meter:
    """Collects the three costs while one ``fit()`` runs."""

    def __init__(self) -> None:
        self.thread_cpu_s = 0.0
        self.on_thread_s = 0.0
        self.dashboard_calls = 0
        self.step_s: list[float] = []

    def install(self, trainer: Pix2pixTrainer) -> None:
        """Wrap the trainer's step and dashboard call, and the dashboard thread's loop."""
        step, call = trainer.train_step, trainer.dashboard_call

        def timed_step(*args: Any, **kwargs: Any) -> None:
            t0 = time.perf_counter()
            step(*args, **kwargs)
            self.step_s.append(time.perf_counter() - t0)

        def timed_call(send: Any) -> None:
            t0 = time.perf_counter()
            call(send)
            self.on_thread_s += time.perf_counter() - t0
            self.dashboard_calls += 1

        trainer.train_step = timed_step  # type: ignore[method-assign]
        trainer.dashboard_call = timed_call  # type: ignore[method-assign]
        run = Worker._run
        meter = self

        def counted_run(worker: Worker) -> None:
            try:
                run(worker)
            finally:  # the thread's own CPU clock, read by the thread itself as it ends
                meter.thread_cpu_s += time.thread_time()

        Worker._run = counted_run  # type: ignore[method-assign]


def config_for(name: str, workdir: Path, port: int, displays: int) -> Config:
    """``default`` (256 px, batch 1) or ``demo`` (64 px, batch 8), sized to ``displays``."""
    base = Config.load(PACKAGED / "demo.json" if name == "demo" else None)
    every = base.visualizer.visdom.update_frequency
    batch, size = base.dataloader.batch_size, base.dataloader.crop_size
    steps = displays * every
    n_train = steps * batch
    data = generate_synthetic_dataset(workdir / f"data_{name}", n=n_train * 10 // 8, size=size)
    return base.with_overrides(
        {
            "common.output_directory": str(workdir / f"out_{name}"),
            "common.device": "cpu",
            "dataloader.dataroot": str(data),
            "dataloader.num_workers": 0,  # loading stays in this process, counted as training
            "train.epochs": 1,
            "train.epochs_decay": 0,
            "save.example_save_rate": 0,
            "visualizer.visdom.enable": True,
            "visualizer.visdom.server": "http://127.0.0.1",
            "visualizer.visdom.port": port,
            "visualizer.visdom.env_name": f"bench_cost_{name}",
            "visualizer.visdom.autostart": False,
        }
    )


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first met, recursively)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            out += [child, *descendants(child)]
    return out


def browser_cpu_s() -> float:
    """CPU seconds of the Chromium processes this process started (through Playwright)."""
    total = 0.0
    for pid in descendants(os.getpid()):
        try:
            if "chrom" in Path(f"/proc/{pid}/comm").read_text():
                total += process_cpu_s(pid)
        except OSError:
            continue  # gone meanwhile
    return total


@contextmanager
def watching_browser(url: str | None):
    """Headless Chromium showing ``url`` until the block ends (nothing when ``url`` is None)."""
    if url is None:
        yield
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from _support import launch_chromium  # the browser tests' flags, kept in one place
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url, wait_until="load", timeout=30_000)
        try:
            yield
        finally:
            browser.close()


def measure(name: str, workdir: Path, displays: int, browser: bool) -> dict[str, Any]:
    with visdom_server_process(workdir / f"server_{name}") as (port, server_pid):
        cfg = config_for(name, workdir, port, displays)
        trainer = Pix2pixTrainer(cfg)  # connects the dashboard: the env exists from here
        meter = Meter()
        meter.install(trainer)
        with watching_browser(trainer.dashboard_url if browser else None):
            server_before, cpu_before = process_cpu_s(server_pid), time.process_time()
            browser_before = browser_cpu_s()
            wall_before = time.perf_counter()
            trainer.fit()
            trainer.close()
            wall = time.perf_counter() - wall_before
            process_cpu = time.process_time() - cpu_before
            server_cpu = process_cpu_s(server_pid) - server_before
            browser_cpu = browser_cpu_s() - browser_before
    every = cfg.visualizer.visdom.update_frequency
    step = statistics.median(meter.step_s)
    shown = max(1, len(meter.step_s) // every)  # display steps in the run
    between = every * step  # training time between two displays
    off_thread = meter.thread_cpu_s + server_cpu
    training_cpu = process_cpu - meter.thread_cpu_s
    return {
        "config": name,
        "steps": len(meter.step_s),
        "update_frequency": every,
        "displays": shown,
        "dashboard_calls": meter.dashboard_calls,
        "median_step_s": step,
        "fit_wall_s": wall,
        "training_cpu_s": training_cpu,
        "on_thread_ms_per_display": 1e3 * meter.on_thread_s / shown,
        "thread_cpu_ms_per_display": 1e3 * meter.thread_cpu_s / shown,
        "server_cpu_ms_per_display": 1e3 * server_cpu / shown,
        "browser": browser,
        "browser_cpu_ms_per_display": 1e3 * browser_cpu / shown,
        "worst_case": (meter.on_thread_s + off_thread) / shown / between,
        "cpu_share": meter.on_thread_s / shown / between + off_thread / training_cpu,
    }


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        f"Machine: {cpu_model()}; command: `{command}`",
        "",
        "| config | steps | every | median step | on the training thread / display "
        "| dashboard thread CPU / display | server CPU / display | worst case | CPU share "
        "| browser CPU / display |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        browser = f"{r['browser_cpu_ms_per_display']:.0f} ms" if r["browser"] else "-"
        lines.append(
            f"| {r['config']} | {r['steps']} | {r['update_frequency']} "
            f"| {r['median_step_s'] * 1e3:.0f} ms | {r['on_thread_ms_per_display']:.2f} ms "
            f"| {r['thread_cpu_ms_per_display']:.1f} ms | {r['server_cpu_ms_per_display']:.1f} ms "
            f"| {100 * r['worst_case']:.2f}% | {100 * r['cpu_share']:.2f}% | {browser} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--configs", nargs="+", default=["default", "demo"], choices=["default", "demo"])
    p.add_argument("--displays", type=positive_int, default=8, help="display steps per config")
    p.add_argument("--browser", action="store_true", help="a Chromium page watches the env")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            print(f"{name}: training ...", file=sys.stderr, flush=True)
            rows.append(measure(name, Path(tmp), args.displays, args.browser))
    print(markdown(rows, "python bench/dashboard_cost.py " + " ".join(sys.argv[1:])))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
