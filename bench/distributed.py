"""Training throughput with 1 vs N processes (DistributedDataParallel, one thread each).

Run: ``.venv/bin/python bench/distributed.py [--nproc 2] [--steps 40]``. Generates
a synthetic dataset once, then for each process count starts
``python -m torch.distributed.run --standalone --nproc_per_node N`` on this
script in worker mode. Each rank runs the real ``Pix2pixTrainer.train_step``
(DDP gradient all-reduce every step, loss all-reduce on display steps) on its
shard of the data with ``torch.set_num_threads(1)``; rank 0 reports images/s
over all ranks, timed between two barriers after a warm-up. With one process
there is no process group at all (the single-process code path).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "


def bench_config(dataroot: Path, batch_size: int, size: int) -> dict:
    """The demo's model size (features 32, 6 downs) on ``size`` px crops, no side effects."""
    return {
        "common": {"num_threads": 1, "output_directory": str(dataroot.parent / "out")},
        "dataloader": {
            "dataroot": str(dataroot),
            "load_size": size,
            "crop_size": size,
            "batch_size": batch_size,
            "num_workers": 0,
        },
        "train": {
            "epochs": 1000,
            "generator": {"features": 32, "n_downs": 6},
            "discriminator": {"base_channels": 32, "n_layers": 3},
        },
        "save": {"log_losses": False},
        "visualizer": {"visdom": {"enable": False, "update_frequency": 50}},
    }


# -- worker (one rank) ----------------------------------------------------------------------


def batches(trainer, count: int):
    """``count`` batches on the device, epoch after epoch (the sampler reshuffles each one)."""
    from nectargan.trainers.distributed import set_sampler_epoch

    epoch = 0
    while True:
        set_sampler_epoch(trainer.train_loader, epoch)
        for idx, (x, y) in enumerate(trainer.train_loader):
            if count == 0:
                return
            count -= 1
            yield idx, x.to(trainer.device), y.to(trainer.device)
        epoch += 1


def run_steps(trainer, count: int) -> None:
    trainer.batches_per_epoch = len(trainer.train_loader)
    for idx, x, y in batches(trainer, count):
        trainer.train_step(x, y, idx)
        trainer.progress.step_done()


def worker(args: argparse.Namespace) -> None:
    import torch

    from nectargan.trainers import Pix2pixTrainer

    cfg = bench_config(Path(args.dataroot), args.batch_size, args.size)
    trainer = Pix2pixTrainer(cfg, quicksetup=False, log_losses=False)
    trainer.on_epoch_start()
    run_steps(trainer, args.warmup)
    sync = trainer.procs.barrier  # a no-op in a single process
    sync()
    start = time.perf_counter()
    run_steps(trainer, args.steps)
    sync()
    elapsed = time.perf_counter() - start
    if trainer.is_main_process:
        images = trainer.world_size * args.batch_size * args.steps
        result = {
            "nproc": trainer.world_size,
            "threads_per_process": torch.get_num_threads(),
            "precision": trainer.precision.name,
            "images_per_s": images / elapsed,
            "step_ms": 1000 * elapsed / args.steps,
        }
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    trainer.close()


# -- driver ---------------------------------------------------------------------------------


def launch(nproc: int, args: argparse.Namespace, dataroot: Path) -> dict:
    """One torchrun job of ``nproc`` ranks; its rank 0's result line."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        __file__,
        "--worker",
        "--dataroot",
        str(dataroot),
        *("--steps", str(args.steps), "--warmup", str(args.warmup)),
        *("--batch-size", str(args.batch_size), "--size", str(args.size)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"{nproc} process(es) failed:\n{done.stderr[-3000:]}")


def drive(args: argparse.Namespace) -> None:
    from nectargan.dataset import generate_synthetic_dataset

    with tempfile.TemporaryDirectory(prefix="nectargan-bench-") as tmp:
        dataroot = generate_synthetic_dataset(Path(tmp) / "synth", n=200, size=args.size)
        counts = [1, args.nproc] if args.nproc > 1 else [1]
        results = [launch(n, args, dataroot) for n in counts]
    base = results[0]["images_per_s"]
    print(
        f"pix2pix step, {args.size}px, batch {args.batch_size} per process, "
        f"{results[0]['precision']}, {args.steps} timed steps after {args.warmup} warm-up"
    )
    print(f"{'processes':>9} {'threads/proc':>12} {'images/s':>9} {'step ms':>8} {'speed-up':>8}")
    for r in results:
        print(
            f"{r['nproc']:>9} {r['threads_per_process']:>12} {r['images_per_s']:>9.1f} "
            f"{r['step_ms']:>8.1f} {r['images_per_s'] / base:>7.2f}x"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2, help="compare 1 process with this many")
    p.add_argument("--steps", type=int, default=40, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=4, help="per process")
    p.add_argument("--size", type=int, default=64, help="image size (px)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dataroot", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    parsed = parse_args()
    worker(parsed) if parsed.worker else drive(parsed)
