"""What the live validation and the per-epoch windows cost.

Run: ``PYTHONPATH=. .venv/bin/python bench/validation.py`` (``--quick`` for a
smoke run; ``--json FILE`` keeps the figures).

1. **Share of the epoch** spent on the per-epoch reporting (validation on at
   most ``val_max_images`` items, best.pt, run files, dashboard windows):

   * demo config (64 px synthetic data, 320 training pairs, batch 8, 40 val
     items): real epochs; per epoch, the validation's own seconds (from
     ``val_metrics.json``) and the whole ``RunMonitor.epoch_finished`` call,
     over the training seconds of the epoch (``epoch_stats.json``).
   * default config (256 px, batch 1, U-Net 8 downs / 64 features): a full
     epoch is minutes, so the training step is timed (median of a few) and
     multiplied by the epoch's steps; the validation is timed on its real
     bound, ``val_max_images`` = 64 items (a 640-pair synthetic set has 64
     val items), median of 3.

2. **Step rate with the dashboard on**: demo config against a real loopback
   Visdom server, the dashboard on throughout, a 120-pair synthetic set (12
   steps per epoch, so rounds are short); epochs alternate between the
   per-epoch reporting on and off (order flipped every round). The figure is
   the median over rounds of (training s/step with it on / with it off): the
   paired ratio of docs/benchmarks.md. The reporting runs between epochs
   only, so this checks it leaves nothing behind that slows the next epoch.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import cpu_model, visdom_server

from nectargan.config import Config
from nectargan.dataset import generate_synthetic_dataset
from nectargan.runs import records as rm
from nectargan.trainers import Pix2pixTrainer
from nectargan.trainers.precision import cpu_supports_bf16

DEMO = Path(__file__).resolve().parents[1] / "nectargan" / "config" / "demo.json"
RATE_PAIRS = 120  # step-rate part: 96 training pairs, 12 steps of 8 per epoch


def demo_config(workdir: Path, epochs: int, **visdom: Any) -> dict[str, Any]:
    cfg = Config.load(DEMO).to_dict()
    cfg["common"]["output_directory"] = str(workdir / "out")
    cfg["train"]["epochs"], cfg["train"]["epochs_decay"] = epochs, 0
    cfg["visualizer"]["visdom"].update({"enable": False, **visdom})
    return cfg


def timed_monitor(trainer: Any) -> list[float]:
    """Wrap ``monitor.epoch_finished`` so each call's seconds are kept."""
    seconds: list[float] = []
    inner = trainer.monitor.epoch_finished

    def finished() -> None:
        started = time.perf_counter()
        inner()
        seconds.append(time.perf_counter() - started)

    trainer.monitor.epoch_finished = finished
    return seconds


def run_demo_share(workdir: Path, epochs: int) -> dict[str, Any]:
    trainer = Pix2pixTrainer(demo_config(workdir / "share", epochs))
    monitor_s = timed_monitor(trainer)
    trainer.fit()
    exp = trainer.experiment_dir
    val = rm.read_val_metrics(exp)
    stats = rm.read_epoch_stats(exp)
    epoch_s = [s["seconds"] for s in stats]
    val_s = [r["seconds"] for r in val]
    return {
        "epochs": epochs,
        "train_pairs": len(trainer.train_loader.dataset),
        "val_images": val[0]["images"],
        "epoch_s": statistics.median(epoch_s),
        "val_s": statistics.median(val_s),
        "monitor_s": statistics.median(monitor_s),
        "val_share": statistics.median(v / e for v, e in zip(val_s, epoch_s, strict=True)),
        "monitor_share": statistics.median(m / e for m, e in zip(monitor_s, epoch_s, strict=True)),
    }


def run_default_share(workdir: Path, steps: int, warmup: int) -> dict[str, Any]:
    """Default config: timed training steps vs a validation on 64 items."""
    data = generate_synthetic_dataset(workdir / "data640", n=640, size=64)
    cfg = {
        "common": {"output_directory": str(workdir / "default")},
        "dataloader": {"dataroot": str(data)},
        "visualizer": {"visdom": {"enable": False}},
    }
    trainer = Pix2pixTrainer(cfg)
    trainer.batches_per_epoch = 10**6
    trainer.on_epoch_start()
    x, y = next(iter(trainer.train_loader))
    times = []
    for i in range(warmup + steps):
        started = time.perf_counter()
        trainer.train_step(x, y, i + 1)  # idx 0 would be a display step
        if i >= warmup:
            times.append(time.perf_counter() - started)
    validator = trainer.monitor.validator
    val_times = [validator.run(trainer.gen, 1).seconds for _ in range(3)]
    step_s, val_s = statistics.median(times), statistics.median(val_times)
    out: dict[str, Any] = {
        "val_images": validator.n_images,
        "step_s": step_s,
        "val_s": val_s,
        "steps_timed": steps,
    }
    for label, pairs in (("synthetic default (320 pairs)", 320), ("facades (400 pairs)", 400)):
        out[label] = val_s / (step_s * pairs)
    return out


def run_step_rate(workdir: Path, rounds: int) -> dict[str, Any]:
    with visdom_server(workdir) as port:
        cfg = demo_config(
            workdir / "rate", 2 * rounds + 1, enable=True, port=port, env_name="bench_validation"
        )
        cfg["dataloader"]["synthetic"]["n"] = RATE_PAIRS  # short epochs: many rounds in minutes
        trainer = Pix2pixTrainer(cfg)
        monitor = trainer.monitor
        monitor_cpu: list[float] = []
        inner = monitor.epoch_finished

        def finished() -> None:
            started = time.process_time()
            inner()
            monitor_cpu.append(time.process_time() - started)

        monitor.epoch_finished = finished
        trainer.train_paired(0)  # warm-up epoch
        per_step: dict[str, list[float]] = {"on": [], "off": []}
        cpu_step: dict[str, list[float]] = {"on": [], "off": []}
        epoch = 1
        for r in range(rounds):
            for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                trainer.monitor = monitor if mode == "on" else None
                before, cpu0 = len(monitor_cpu), time.process_time()
                trainer.train_paired(epoch)
                cpu = time.process_time() - cpu0 - sum(monitor_cpu[before:])
                epoch += 1
                per_step[mode].append(trainer.last_epoch_time / trainer.batches_per_epoch)
                cpu_step[mode].append(cpu / trainer.batches_per_epoch)
            on, off = per_step["on"][-1], per_step["off"][-1]
            print(f"  round {r + 1}/{rounds}: on {on:.4f} off {off:.4f} s/step", file=sys.stderr)
        trainer.monitor = monitor
        trainer.close()
    on, off = per_step["on"], per_step["off"]
    return {
        "rounds": rounds,
        "steps_per_epoch": trainer.batches_per_epoch,
        "s_per_step_on": statistics.median(on),
        "s_per_step_off": statistics.median(off),
        "paired_ratio": statistics.median(a / b for a, b in zip(on, off, strict=True)),
        "per_round": list(zip(on, off, strict=True)),
        "cpu_paired_ratio": statistics.median(
            a / b for a, b in zip(cpu_step["on"], cpu_step["off"], strict=True)
        ),
        "cpu_per_round": list(zip(cpu_step["on"], cpu_step["off"], strict=True)),
    }


def machine() -> str:
    return (
        f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"native bf16: {cpu_supports_bf16()}, python {platform.python_version()}"
    )


def markdown(res: dict[str, Any]) -> str:
    lines = [f"Machine: {res['machine']}", ""]
    d, f, s = res.get("demo"), res.get("default"), res.get("step_rate")
    if d or f:
        lines += [
            "| config | epoch (training) | validation | share | all per-epoch reporting | share |",
            "|---|---:|---:|---:|---:|---:|",
        ]
    if d:
        lines.append(
            f"| demo ({d['train_pairs']} pairs, batch 8, {d['val_images']} val images) "
            f"| {d['epoch_s']:.2f} s | {d['val_s']:.3f} s | {d['val_share'] * 100:.2f}% "
            f"| {d['monitor_s']:.3f} s | {d['monitor_share'] * 100:.2f}% |"
        )
    if f:
        for label in ("synthetic default (320 pairs)", "facades (400 pairs)"):
            pairs = int(label.split("(")[1].split()[0])
            lines.append(
                f"| default, {label}, {f['val_images']} val images "
                f"| {f['step_s'] * pairs:.0f} s (est.) | {f['val_s']:.2f} s "
                f"| {f[label] * 100:.2f}% | - | - |"
            )
        lines += [
            "",
            f"Default config: {f['steps_timed']} timed steps, median {f['step_s']:.3f} s/step; "
            f"validation median of 3: {f['val_s']:.2f} s for {f['val_images']} images.",
        ]
    if s:
        lines += [
            "",
            f"Step rate, dashboard on (demo, {s['rounds']} rounds, {s['steps_per_epoch']} steps "
            f"per epoch): reporting on {s['s_per_step_on']:.4f} s/step, off "
            f"{s['s_per_step_off']:.4f} s/step, paired ratio (wall) **{s['paired_ratio']:.3f}**, "
            f"(process CPU) **{s['cpu_paired_ratio']:.3f}**; wall per round "
            + ", ".join(f"{a:.4f}/{b:.4f}" for a, b in s["per_round"])
            + "; CPU per round "
            + ", ".join(f"{a:.4f}/{b:.4f}" for a, b in s["cpu_per_round"])
            + ".",
        ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer epochs and steps")
    p.add_argument("--rounds", type=int, default=3, help="paired on/off rounds (step rate)")
    p.add_argument("--epochs", type=int, default=2, help="demo-config epochs (share)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument(
        "--only",
        nargs="+",
        choices=("demo", "default", "rate"),
        default=("demo", "default", "rate"),
        help="parts to run (default: all)",
    )
    args = p.parse_args()
    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="nectargan-bench-val-") as tmp:
        work = Path(tmp)
        res: dict[str, Any] = {"machine": machine()}
        if "demo" in args.only:
            print("demo config: epochs with validation ...", file=sys.stderr)
            res["demo"] = run_demo_share(work, 1 if args.quick else args.epochs)
        if "default" in args.only:
            print("default config: step and validation times ...", file=sys.stderr)
            res["default"] = run_default_share(work, 2 if args.quick else 6, 1 if args.quick else 2)
        if "rate" in args.only:
            print("step rate with the dashboard on ...", file=sys.stderr)
            res["step_rate"] = run_step_rate(work, rounds)
    print(markdown(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
