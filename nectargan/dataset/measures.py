"""Per-pair measures that find bad pairs: brightness, contrast, blank areas, wrong shapes.

Sorted by one of these, a few thousand pairs show their outliers first (a white
page, a black frame, a photo that is no A|B pair). Computed from PIL's histogram
of the greyscale image (C code that releases the GIL, so threads scale), and
cached in ``<root>/.nectargan/measures/<split>.json`` keyed by each file's size
and mtime: the next visit measures only what changed. Torch-free.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from nectargan.dataset.io import SPLITS, has_image_name
from nectargan.dataset.task import Task, tick
from nectargan.errors import DataUserError
from nectargan.utils.atomic import atomic_writer
from nectargan.utils.json_files import read_json_object

CACHE_DIR = ".nectargan"  # inside the dataset root; dot-named, so no split lists it
CACHE_VERSION = 1
NEAR_WHITE = 245  # grey levels at or above: paper, blown-out sky
NEAR_BLACK = 10  # at or below: frames, failed exposures
MEASURES = {
    "brightness": "mean brightness (0-255)",
    "contrast": "RMS contrast (std of grey / 255)",
    "white": "share of near-white pixels",
    "black": "share of near-black pixels",
    "mismatch": "A/B size mismatch (|width/2 - height| / height)",
    "file_size": "file size (bytes)",
}
BATCH = 64  # files per progress report (and per cancel check)


@dataclass(frozen=True)
class FileKey:
    """A file as the cache knows it: a changed size or mtime means measure again."""

    name: str
    size: int
    mtime_ns: int


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataUserError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    return split


def scan_folder(folder: Path) -> list[FileKey]:
    """The image files directly in ``folder`` with size and mtime, by name (one scandir).

    The name is tested first and the directory entry's own type used, so a
    10,000-file folder costs one ``stat`` per image and nothing more.
    """
    keys = []
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not has_image_name(Path(name)) or not entry.is_file():
                continue
            st = entry.stat()
            keys.append(FileKey(name, st.st_size, st.st_mtime_ns))
    return sorted(keys, key=lambda k: k.name)


def measure_image(path: Path, file_size: int | None = None) -> dict[str, float]:
    """The measures of one stored A|B image (see :data:`MEASURES`)."""
    import numpy as np  # here: `nectargan data --help` lists MEASURES without numpy

    with Image.open(path) as img:
        w, h = img.size
        hist = np.asarray(img.convert("L").histogram(), dtype=np.float64)
    levels = np.arange(256, dtype=np.float64)
    n = max(hist.sum(), 1.0)
    mean = float((hist * levels).sum() / n)
    var = float((hist * (levels - mean) ** 2).sum() / n)
    return {
        "brightness": round(mean, 2),
        "contrast": round(math.sqrt(var) / 255.0, 4),
        "white": round(float(hist[NEAR_WHITE:].sum() / n), 4),
        "black": round(float(hist[: NEAR_BLACK + 1].sum() / n), 4),
        "mismatch": round(abs(w / 2 - h) / max(h, 1), 4),
        "file_size": float(file_size if file_size is not None else path.stat().st_size),
    }


def _measured(folder: Path, key: FileKey) -> dict:
    """A cache entry: the key and its measures, or why the file could not be measured."""
    entry: dict = {"size": key.size, "mtime_ns": key.mtime_ns}
    try:
        entry["m"] = measure_image(folder / key.name, key.size)
    except Exception as exc:  # PIL raises many types for broken files
        entry["error"] = f"cannot read image: {exc}"
    return entry


def cache_path(root: Path, split: str) -> Path:
    return Path(root) / CACHE_DIR / "measures" / f"{split}.json"


def load_cache(path: Path) -> dict[str, dict]:
    data = read_json_object(path) or {}  # none yet, or unreadable: measure again
    return data.get("files", {}) if data.get("version") == CACHE_VERSION else {}


def _save_cache(path: Path, files: dict[str, dict]) -> None:
    """Best effort: a read-only dataset is measured every time, not refused."""
    try:
        with atomic_writer(path, "w", fsync=False) as f:
            json.dump({"version": CACHE_VERSION, "files": files}, f, separators=(",", ":"))
    except OSError:
        pass


def is_fresh(entry: dict | None, key: FileKey) -> bool:
    return bool(entry) and entry["size"] == key.size and entry["mtime_ns"] == key.mtime_ns


def _batches(items: list[FileKey]) -> Iterator[list[FileKey]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def measure_split(
    root: str | Path, split: str, task: Task | None = None, workers: int | None = None
) -> dict[str, dict]:
    """Name -> cache entry (``m``: measures, or ``error``) for every image of ``root/split``.

    Cached entries whose file is unchanged are reused; the rest are measured on
    ``workers`` threads (default: the usable cores), reporting to ``task``. What was
    measured is saved even when cancelled, so the next call carries on from there.
    """
    root = Path(root)
    folder = root / check_split(split)
    if not folder.is_dir():
        raise DataUserError(f"'{folder}' is not a folder; expected {root}/{split}/ with images")
    keys = scan_folder(folder)
    path = cache_path(root, split)
    cached = load_cache(path)
    result = {k.name: cached[k.name] for k in keys if is_fresh(cached.get(k.name), k)}
    todo = [k for k in keys if k.name not in result]
    workers = workers or len(os.sched_getaffinity(0))
    tick(task, len(result), len(keys), "measuring")
    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for batch in _batches(todo):
                for key, entry in zip(
                    batch, pool.map(lambda k: _measured(folder, k), batch), strict=True
                ):
                    result[key.name] = entry
                tick(task, len(result), len(keys))
    finally:
        if todo:
            _save_cache(path, result)
    return result
