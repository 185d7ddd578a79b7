"""A long run of a tiny config: does anything grow with the run's length?

Run: ``PYTHONPATH=. .venv/bin/python bench/soak.py`` (``--quick`` for a smoke
run; ``--epochs N``, ``--tracemalloc`` for the Python heap's top growth,
``--json FILE`` keeps the samples).

Users train for days, so nothing kept may grow without bound and no
per-epoch cost may grow with the number of epochs done. The run: the demo
config shrunk (32 px, U-Net 3 downs / 8 features, PatchGAN 2 layers / 8
channels, a 40-pair synthetic set: 8 steps of batch 4 per epoch), hundreds of
epochs, everything on: the dashboard thread sending to a real loopback Visdom
server (an update every 2 steps, a flush every 0.2 s, an env save every few
seconds), the loss log, example images, validation every epoch and a
checkpoint every 10 epochs.

Sampled after every epoch: RSS, open file descriptors and threads; training
s/step; the LossManager's records held in memory (pending, unlogged,
history); the engine's retained points per window (loss series and per-epoch
panels; their bound, 5000 points a series, is lowered to ``--max-points`` so
that it is reached mid-run, as is the loss history's, 10,000 records a loss,
lowered to ``--history``); the Visdom env's size on the server (``win_data``) and of
its saved env file; the sizes of ``val_metrics.json``, ``epoch_stats.json``,
``timing.json``, ``run_info.json`` and the loss log, and the seconds each
write took; the whole ``RunMonitor.epoch_finished``. Reported: each figure
early and late, and its slope per 100 epochs (per 1000 steps for step time
and RSS) fitted over the second and the last fifth of the run.

Then, side by side in one process (``--writes N ...``): one epoch's
``epoch_stats.json`` write after N epochs, the whole indented rewrite every
epoch that the files used before this bench (re-created here as the
baseline) against the in-place append they use now, interleaved rep by rep.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import cpu_model, visdom_server

from nectargan.config import Config
from nectargan.runs import records as rm
from nectargan.trainers import Pix2pixTrainer
from nectargan.trainers import trainer as trainer_module
from nectargan.utils.atomic import atomic_write_text
from nectargan.visualizer.visdom.windows import LineWindow, PanelWindow

DEMO = Path(__file__).resolve().parents[1] / "nectargan" / "config" / "demo.json"
ENV = "bench_soak"
WRITES = ("val_metrics", "epoch_stats", "timing", "loss_log")
PER_STEP = {"s_per_step", "rss_kib", "heap_kib"}  # slopes per 1000 steps; the rest per 100 epochs


# -- setup ------------------------------------------------------------------------------


def soak_config(workdir: Path, epochs: int, port: int) -> dict[str, Any]:
    """The demo config shrunk so hundreds of epochs fit in minutes, everything on."""
    cfg = Config.load(DEMO).to_dict()
    cfg["common"]["output_directory"] = str(workdir / "out")
    cfg["dataloader"].update(load_size=32, crop_size=32, batch_size=4, num_workers=0)
    cfg["dataloader"]["synthetic"].update(n=40, size=32)
    cfg["train"].update(epochs=epochs, epochs_decay=0)
    cfg["train"]["generator"].update(features=8, n_downs=3)
    cfg["train"]["discriminator"].update(base_channels=8, n_layers=2)
    cfg["save"].update(model_save_rate=10, example_save_rate=1, num_examples=2)
    cfg["visualizer"]["visdom"].update(
        enable=True,
        port=port,
        server="http://127.0.0.1",
        env_name=ENV,
        autostart=False,
        image_size=64,
        update_frequency=2,
        update_interval=0.2,
        val_every=1,
    )
    return cfg


def timed(seconds: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` that leaves its latest call's duration in ``seconds[key]`` (keeps no history)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[key] = time.perf_counter() - started

    return wrapper


def instrument(trainer: Any) -> dict[str, float]:
    """Time every per-epoch file write and the monitor's epoch hook; returns where they go."""
    seconds: dict[str, float] = {}
    for key in ("val_metrics", "epoch_stats"):  # the epoch's call is the last one timed
        for verb in ("write", "append"):
            name = f"{verb}_{key}"
            if hasattr(rm, name):  # append_*: since the soak's fix
                setattr(rm, name, timed(seconds, key, getattr(rm, name)))
    trainer_module.record_epoch = timed(seconds, "timing", trainer_module.record_epoch)
    lm = trainer.loss_manager
    lm.flush_log = timed(seconds, "loss_log", lm.flush_log)
    monitor = trainer.monitor
    monitor.epoch_finished = timed(seconds, "monitor", monitor.epoch_finished)
    return seconds


# -- one sample ---------------------------------------------------------------------------


def rss_kib() -> float:
    return float(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGESIZE") / 1024


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tree_size(folder: Path) -> int:
    return sum(file_size(p) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def env_bytes_on_server(port: int) -> int:
    """Size of the env's JSON as the Visdom server holds it in memory."""
    body = json.dumps({"eid": ENV, "win": None}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/win_data", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return len(response.read())
    except OSError:
        return -1


def engine_points(trainer: Any) -> dict[str, int]:
    """Points each window of the visualizer's engine retains."""
    out: dict[str, int] = {}
    for w in list(trainer.vis._engine.windows.values()):
        if isinstance(w, LineWindow):
            out[w.win] = sum(len(s) for s in w.series.values())
        elif isinstance(w, PanelWindow):
            out[w.win] = len(w) if hasattr(w, "thinned") else sum(map(len, w.points.values()))
    return out


def loss_records(trainer: Any) -> dict[str, int]:
    """Records the LossManager holds in memory: waiting for a read, for the log, in history."""
    lm = trainer.loss_manager
    return {
        "pending": len(lm._pending),
        "unlogged": sum(len(c["step"]) for c in lm._unlogged.values()),
        "history": sum(len(h) for h in lm._history.values()),
    }


def sample(trainer: Any, port: int, workdir: Path, seconds: dict[str, float]) -> dict:
    exp = Path(trainer.experiment_dir)
    last = dict(seconds)
    return {
        "epoch": trainer.epochs_completed,
        "step": trainer.global_step,
        "s_per_step": trainer.last_epoch_time / trainer.batches_per_epoch,
        "rss_kib": rss_kib(),
        "heap_kib": tracemalloc.get_traced_memory()[0] / 1024 if tracemalloc.is_tracing() else None,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "records": loss_records(trainer),
        "points": engine_points(trainer),
        "env_server_bytes": env_bytes_on_server(port),
        "env_file_bytes": file_size(workdir / "envs" / f"{ENV}.json"),
        "file_bytes": {
            "val_metrics": file_size(exp / rm.VAL_METRICS_FILE),
            "epoch_stats": file_size(exp / rm.EPOCH_STATS_FILE),
            "timing": file_size(exp / "timing.json"),
            "run_info": file_size(exp / rm.RUN_INFO_FILE),
            "loss_log_index": file_size(exp / "loss_log.json"),
            "loss_log_dir": tree_size(exp / "loss_log"),
            "examples_dir": tree_size(exp / "examples"),
            "checkpoints_dir": tree_size(exp / "checkpoints"),
        },
        "write_s": {k: last.get(k) for k in WRITES},
        "monitor_s": last.get("monitor"),
    }


# -- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    heap: list[Any] = []
    with visdom_server(workdir) as port:
        trainer = Pix2pixTrainer(soak_config(workdir, args.epochs, port))
        vis = trainer.vis
        for w in vis._engine.windows.values():
            if isinstance(w, LineWindow | PanelWindow):
                w.max_points = args.max_points  # reach the bound mid-run
        vis._engine.save_interval = args.save_interval
        lm = trainer.loss_manager
        lm._history = {k: deque(v, maxlen=args.history) for k, v in lm._history.items()}
        seconds = instrument(trainer)
        heap_from = max(2, args.epochs // 2)  # past the history bound: growth left is a leak

        def after_epoch(t: Any) -> None:
            if args.tracemalloc and t.epochs_completed == heap_from:
                heap.append(tracemalloc.take_snapshot())
            samples.append(sample(t, port, workdir, seconds))
            if t.epochs_completed % max(1, args.epochs // 10) == 0:
                s = samples[-1]
                print(
                    f"  epoch {s['epoch']}: {s['s_per_step'] * 1e3:.1f} ms/step, "
                    f"RSS {s['rss_kib'] / 1024:.0f} MiB, monitor {s['monitor_s'] * 1e3:.1f} ms",
                    file=sys.stderr,
                )

        if args.tracemalloc:
            tracemalloc.start(10)
        started = time.perf_counter()
        trainer.fit(after_epoch)
        wall = time.perf_counter() - started
        top = heap_growth(heap[0], tracemalloc.take_snapshot()) if heap else []
        trainer.close()
        samples[-1]["env_file_bytes"] = file_size(workdir / "envs" / f"{ENV}.json")
    return {"wall_s": wall, "samples": samples, "heap_top": top, "heap_from_epoch": heap_from}


def heap_growth(before: Any, after: Any, n: int = 8) -> list[str]:
    """The ``n`` allocation sites (our frames) whose live size grew most between snapshots."""
    stats = after.compare_to(before, "traceback")
    return [
        f"{s.size_diff / 1024:+.1f} KiB in {s.count_diff:+d} blocks at "
        + " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in list(s.traceback)[::-1][:4])
        for s in stats[:n]
    ]


# -- per-epoch write: whole rewrite vs append, side by side --------------------------------


def old_rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """The write before the soak's fix: the whole file, indented, atomically, every epoch."""
    payload = {"format": rm.STATS_FORMAT, "version": rm.VERSION, "rows": rows}
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")


def compare_writes(workdir: Path, counts: list[int], reps: int) -> list[dict[str, Any]]:
    """Median ms of one epoch's ``epoch_stats.json`` write after ``n`` epochs, old vs new.

    Interleaved rep by rep in one process, so machine load hits both alike.
    """
    out = []
    for n in counts:
        rows = [
            {
                "epoch": e,
                "lr_G": 2e-4,
                "lr_D": 2e-4,
                "images": 32,
                "seconds": 0.5,
                "images_per_s": 64.0,
            }
            for e in range(1, n + 1)
        ]
        old_dir, new_dir = workdir / f"old{n}", workdir / f"new{n}"
        old_dir.mkdir()
        rm.write_epoch_stats(new_dir, rows)
        times: dict[str, list[float]] = {"old": [], "new": []}
        for rep in range(reps):
            row = dict(rows[-1], epoch=n + rep + 1)
            rows.append(row)
            started = time.perf_counter()
            old_rewrite(old_dir / rm.EPOCH_STATS_FILE, rows)
            times["old"].append(time.perf_counter() - started)
            started = time.perf_counter()
            rm.append_epoch_stats(new_dir, row)
            times["new"].append(time.perf_counter() - started)
        out.append({"epochs": n, **{k: statistics.median(v) for k, v in times.items()}})
    return out


# -- figures ------------------------------------------------------------------------------


def flat(s: dict[str, Any]) -> dict[str, float]:
    """One sample as ``{figure name: value}`` (nested dicts joined with '.')."""
    out: dict[str, float] = {}
    for key, value in s.items():
        if isinstance(value, dict):
            for k, v in value.items():
                if v is not None:
                    out[f"{key}.{k}"] = float(v)
        elif value is not None:
            out[key] = float(value)
    return out


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def summarize(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per figure: median early and late, slope per 100 epochs (per 1000 steps) in each window."""
    rows = [flat(s) for s in samples]
    n = len(rows)
    early, late = rows[n // 5 : 2 * n // 5], rows[4 * n // 5 :]
    return [
        figure(key, early, late)
        | {"epochs": (early[0]["epoch"], early[-1]["epoch"], late[0]["epoch"], n)}
        for key in rows[-1]
        if key not in ("epoch", "step")
    ]


def figure(key: str, early: list[dict[str, float]], late: list[dict[str, float]]) -> dict:
    """One figure's medians and slopes in the early and the late window."""
    unit_x, scale = ("step", 1000.0) if key in PER_STEP else ("epoch", 100.0)
    out: dict[str, Any] = {"figure": key, "per": f"{int(scale)} {unit_x}s"}
    for name, window in (("early", early), ("late", late)):
        pts = [(r[unit_x], r[key]) for r in window if key in r]
        out[name] = statistics.median(p[1] for p in pts)
        out[f"slope_{name}"] = slope([p[0] for p in pts], [p[1] for p in pts]) * scale
    return out


def fmt(key: str, value: float) -> str:
    if key.endswith("_s") or key.startswith(("write_s", "monitor_s", "s_per")):
        return f"{value * 1e3:.3f} ms"
    if key.endswith("kib"):
        return f"{value / 1024:.1f} MiB"
    if key.endswith("bytes") or key.startswith("file_bytes"):
        return f"{value / 1024:.1f} KiB"
    return f"{value:.0f}"


def machine() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} CPUs (shared), {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )


def markdown(res: dict[str, Any]) -> str:
    rows = res["summary"]
    e = rows[0]["epochs"]
    s = res["samples"]
    lines = [
        f"Machine: {res['machine']}",
        "",
        f"{s[-1]['epoch']} epochs, {s[-1]['step']} steps in {res['wall_s']:.0f} s; early = "
        f"epochs {e[0]}-{e[1]}, late = epochs {e[2]}-{e[3]} (medians; slopes fitted in each).",
        "",
        "| figure | early | late | slope early | slope late | per |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        k = r["figure"]
        lines.append(
            f"| {k} | {fmt(k, r['early'])} | {fmt(k, r['late'])} | {fmt(k, r['slope_early'])} "
            f"| {fmt(k, r['slope_late'])} | {r['per']} |"
        )
    if res.get("writes"):
        lines += [
            "",
            "One epoch's `epoch_stats.json` write after N epochs (median of "
            f"{res['write_reps']}, interleaved): whole rewrite (before) vs append (after):",
            "",
            "| epochs in the file | whole rewrite | append | ratio |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {w['epochs']} | {w['old'] * 1e3:.2f} ms | {w['new'] * 1e3:.2f} ms "
            f"| {w['old'] / w['new']:.1f}x |"
            for w in res["writes"]
        ]
    if res["heap_top"]:
        lines += ["", f"Python heap growth from epoch {res['heap_from_epoch']} to the end:", ""]
        lines += [f"- {line}" for line in res["heap_top"]]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--max-points", type=int, default=100, help="plot bound (default 5000)")
    p.add_argument("--history", type=int, default=1000, help="loss history bound (10000)")
    p.add_argument("--save-interval", type=float, default=5.0, help="env autosave, seconds")
    p.add_argument("--tracemalloc", action="store_true", help="report the heap's top growth")
    p.add_argument(
        "--writes",
        type=int,
        nargs="*",
        default=[10, 100, 1000, 10000, 100000],
        help="epoch counts for the rewrite-vs-append comparison (none: skip it)",
    )
    p.add_argument("--write-reps", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="a smoke run: 20 epochs")
    p.add_argument("--json", type=Path, help="also write the samples and figures here")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.max_points, args.writes, args.write_reps = 20, 8, [10, 100], 3
        args.history = 50
    return args


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="nectargan-bench-soak-") as tmp:
        res: dict[str, Any] = {"machine": machine(), **run(args, Path(tmp))}
        if args.writes and hasattr(rm, "append_epoch_stats"):
            res["writes"] = compare_writes(Path(tmp), args.writes, args.write_reps)
            res["write_reps"] = args.write_reps
    res["summary"] = summarize(res["samples"])
    print(markdown(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
