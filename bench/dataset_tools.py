"""The dataset page's costs on a 10,000-pair split: listing a page, measuring, thumbnails.

Run: ``PYTHONPATH=. .venv/bin/python bench/dataset_tools.py`` (``--pairs N``,
``--format png``, ``--dir DIR`` to keep the generated set between runs, ``--quick``
for a smoke run of 500 pairs).

Targets (issue 20): a 10k-pair split lists (first page, by name and by a measure)
in <= 1 s; the measures over 10k pairs of 256 px (512x256 A|B files) take <= 60 s
on 2 cores, with progress, and a second visit reads them from the cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import cpu_model, positive_int
from PIL import Image

from nectargan.dataset.measures import cache_path, measure_split
from nectargan.dataset.pairs import list_pairs, thumbnail
from nectargan.dataset.task import Task

SIDE = 256


def write_dataset(root: Path, n: int, fmt: str) -> Path:
    """``n`` textured 512x256 A|B pairs in ``root/train`` (kept if already there)."""
    folder = root / "train"
    folder.mkdir(parents=True, exist_ok=True)
    if len(os.listdir(folder)) >= n:
        return root
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (SIDE, 2 * SIDE, 3), dtype=np.uint8)
    ext = "jpg" if fmt == "jpeg" else "png"
    for i in range(n):
        shifted = np.roll(base, i * 7, axis=1) // (1 + i % 4)  # vary brightness and content
        Image.fromarray(shifted).save(folder / f"{i:05d}.{ext}", quality=90)
    return root


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, fn):
    wall, cpu = time.perf_counter(), cpu_s()
    value = fn()
    print(f"{label:<44} {time.perf_counter() - wall:8.3f} s wall {cpu_s() - cpu:8.2f} s CPU")
    return value


def progress_printer() -> Task:
    def report(task: Task) -> None:
        if task.done % 1000 == 0 or task.done == task.total:
            print(f"  {task.phase}: {task.done}/{task.total}", file=sys.stderr, flush=True)

    return Task(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=positive_int, default=10_000)
    parser.add_argument("--format", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--dir", type=Path, help="where to keep the generated set")
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--quick", action="store_true", help="500 pairs, a smoke run")
    args = parser.parse_args()
    n = 500 if args.quick else args.pairs
    tmp = None if args.dir else Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    root = args.dir or tmp
    print(f"Machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores usable")
    try:
        timed(
            f"write {n} {args.format} pairs (setup, not a target)",
            lambda: write_dataset(root, n, args.format),
        )
        cache_path(root, "train").unlink(missing_ok=True)
        timed("list first page by name (100 of n)", lambda: list_pairs(root, "train", 0, 100))
        timed("list last page by name", lambda: list_pairs(root, "train", n - 100, 100))
        timed(
            f"measure all, {args.workers} threads, cold",
            lambda: measure_split(root, "train", progress_printer(), args.workers),
        )
        timed("measure all again (cache)", lambda: measure_split(root, "train"))
        page = timed(
            "list first page by brightness, darkest first",
            lambda: list_pairs(root, "train", 0, 100, "brightness"),
        )
        names = [item["name"] for item in page.items]
        shutil.rmtree(root / ".nectargan" / "thumbs", ignore_errors=True)
        timed("100 thumbnails, cold", lambda: [thumbnail(root, "train", x) for x in names])
        timed("100 thumbnails, cached", lambda: [thumbnail(root, "train", x) for x in names])
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
