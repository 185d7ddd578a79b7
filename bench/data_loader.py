"""Pairs per second one DataLoader worker produces, at 256 px from JPEG files.

Run: ``PYTHONPATH=. .venv/bin/python bench/data_loader.py`` (``--per-op`` adds each
augmentation alone, ``--albumentations`` the same fourteen in albumentations 2.0.x
when it is importable, ``--quick`` a smoke run).

What a worker does per item is exactly ``PairedDataset.__getitem__``: decode a
512x256 A|B JPEG, split it, resize both halves to 286 px, augment, crop 256 px and
convert to [-1, 1] tensors. It is timed here in one process with one torch
thread, as DataLoader workers run (``torch.set_num_threads(1)`` in each worker).
Variants alternate in short blocks, round after round in rotating order, so
load from other jobs on a shared machine hits them alike; the figure is the
median over rounds of each block's pairs/s, with the best block beside it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import cpu_model
from PIL import Image

from nectargan.config.augment_schema import AUGMENTATIONS, AugmentConfig
from nectargan.dataset import PairedDataset
from nectargan.dataset.synth import render_pair

SIDE = 256
LOAD = 286
TARGETS = {"defaults": 150.0, "all fourteen (p=1)": 50.0}


def write_jpeg_dataset(root: Path, n: int) -> Path:
    """``n`` 512x256 A|B JPEGs (quality 90) of the synthetic renderings."""
    (root / "train").mkdir(parents=True)
    for i in range(n):
        a, b = render_pair(SIDE, seed=0, index=i)
        Image.fromarray(np.concatenate([a, b], axis=1)).save(
            root / "train" / f"{i:04d}.jpg", quality=90
        )
    return root


def ours(root: Path, cfg: AugmentConfig) -> Callable[[int], object]:
    ds = PairedDataset(root, "train", load_size=LOAD, crop_size=SIDE, augment=cfg, is_train=True)
    return ds.__getitem__


def albumentations_all(root: Path) -> Callable[[int], object] | None:
    """The same fourteen at p=1 in albumentations (geometry on both, photometry on A)."""
    try:
        import albumentations as A  # noqa: N812 (its usual name)
    except ImportError:
        return None
    both = A.Compose(
        [
            A.Resize(LOAD, LOAD),
            A.RandomCrop(SIDE, SIDE),
            A.HorizontalFlip(p=1),
            A.VerticalFlip(p=1),
            A.RandomRotate90(p=1),
            A.Rotate(limit=15, p=1),
            A.ElasticTransform(alpha=8, sigma=24, p=1),
            A.OpticalDistortion(distort_limit=0.05, p=1),
            A.CoarseDropout(
                num_holes_range=(1, 2),
                hole_height_range=(0.1, 0.2),
                hole_width_range=(0.1, 0.2),
                p=1,
            ),
        ],
        additional_targets={"target": "image"},
    )
    photo = A.Compose(
        [
            A.ColorJitter((0.85, 1.15), (0.85, 1.15), (0.85, 1.15), (-0.05, 0.05), p=1),
            A.RandomGamma(gamma_limit=(80, 125), p=1),
            A.GaussianBlur(sigma_limit=(0.5, 1.5), p=1),
            A.MotionBlur(blur_limit=7, p=1),
            A.ToGray(p=1),
            A.ImageCompression(quality_range=(60, 95), p=1),
            A.GaussNoise(std_range=(0.02, 0.08), p=1),
        ]
    )
    ds = PairedDataset(root, "train", load_size=LOAD, crop_size=SIDE, is_train=False)

    def item(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ds.load_pair(i)
        out = both(image=np.asarray(a), target=np.asarray(b))
        x = photo(image=out["image"])["image"]
        return tuple(  # type: ignore[return-value]
            torch.from_numpy(v).permute(2, 0, 1).float().div_(127.5).sub_(1)
            for v in (x, out["target"])
        )

    return item


def measure(variants: dict[str, Callable[[int], object]], n: int, rounds: int, block: int):
    names = list(variants)
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu_rates: dict[str, list[float]] = {name: [] for name in names}
    for fn in variants.values():  # warm-up: imports, caches, first allocations
        for i in range(3):
            fn(i % n)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = variants[name]
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(block):
                fn((r * block + i) % n)
            rates[name].append(block / (time.perf_counter() - start))
            cpu_rates[name].append(block / (time.process_time() - cpu))
    return rates, cpu_rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=40, help="items per timed block")
    parser.add_argument("--per-op", action="store_true", help="also each augmentation alone")
    parser.add_argument("--albumentations", action="store_true", help="compare albumentations")
    parser.add_argument("--quick", action="store_true", help="smoke run (2 rounds of 5)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.block = 2, 5
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        n = 48
        root = write_jpeg_dataset(Path(tmp) / "jpeg", n)
        variants = {
            "no augmentation": ours(root, AugmentConfig.off()),
            "defaults": ours(root, AugmentConfig()),
            "all fourteen (p=1)": ours(root, AugmentConfig.all_on()),
        }
        if args.per_op:
            for name in AUGMENTATIONS:
                cfg = AugmentConfig.model_validate({"hflip": {"p": 0}, name: {"p": 1}})
                variants[f"{name} alone"] = ours(root, cfg)
        if args.albumentations:
            alb = albumentations_all(root)
            if alb is None:
                print("albumentations is not importable: skipped")
            else:
                import albumentations

                variants[f"albumentations {albumentations.__version__}, all fourteen"] = alb
        rates, cpu_rates = measure(variants, n, args.rounds, args.block)
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, 1 thread; Python {platform.python_version()}"
    )
    print(f"{args.rounds} rounds x {args.block} items, 256 px crops from 512x256 JPEG (q 90)\n")
    print(
        "| pipeline | pairs/s per worker (CPU time) | ms CPU per pair | "
        "pairs/s (wall, median) | best block (wall) | target |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    base = 1000 / statistics.median(cpu_rates["no augmentation"])
    for name, values in rates.items():
        cpu = statistics.median(cpu_rates[name])
        target = TARGETS.get(name)
        mark = "" if target is None else f">= {target:.0f} {'ok' if cpu >= target else 'MISSED'}"
        extra = "" if name == "no augmentation" else f" (+{1000 / cpu - base:.1f})"
        print(
            f"| {name} | {cpu:.0f} | {1000 / cpu:.1f}{extra} | {statistics.median(values):.0f} "
            f"| {max(values):.0f} | {mark} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
