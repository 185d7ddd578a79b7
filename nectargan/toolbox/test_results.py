"""What a run's ``test/`` folder holds, for the Testing page (torch-free file reads).

``nectargan test`` writes ``<run>/test/<result>/metrics.json`` (means and one
row per image) beside the triplet PNGs; the page lists those results, shows one
as a grid and follows a running test by counting the PNGs it has written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.dataset.io import is_image_file
from nectargan.runs import records
from nectargan.utils.json_files import read_json_object

OUTPUTS_LINE = re.compile(r"^outputs: (.+)$", re.M)
RESULT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def checkpoint_epochs(run: Path) -> list[int]:
    """Epochs with an ``epoch_NNNN.pt`` checkpoint, oldest first."""
    folder = run / layout.CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = (layout.CHECKPOINT_RE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def run_choices(run: Path) -> dict[str, Any]:
    """The epochs a test can use: numbered checkpoints, whether best.pt exists and its epoch."""
    best = records.read_val_best(run)
    return {
        "epochs": checkpoint_epochs(run),
        "has_best": (run / layout.CHECKPOINT_DIR / layout.BEST_CHECKPOINT).is_file(),
        "best_epoch": best.get("epoch") if best else None,
    }


def read_metrics(folder: Path) -> dict[str, Any] | None:
    return read_json_object(folder / layout.METRICS_FILE)


def list_results(run: Path) -> list[dict[str, Any]]:
    """Every earlier test of ``run``: name, epoch, split, image count, means; newest first."""
    folder = run / layout.TEST_DIR
    if not folder.is_dir():
        return []
    out = []
    for sub in folder.iterdir():
        data = read_metrics(sub) if sub.is_dir() else None
        if data is None:
            continue
        out.append(
            {
                "name": sub.name,
                "epoch": data.get("epoch"),
                "split": data.get("split"),
                "n_images": data.get("n_images"),
                "metrics": data.get("metrics") or {},
                "modified": (sub / layout.METRICS_FILE).stat().st_mtime,
            }
        )
    return sorted(out, key=lambda r: r["modified"], reverse=True)


def result_detail(run: Path, name: str) -> dict[str, Any] | None:
    """One result's means and per-image rows, each with its triplet's name under the run."""
    if not RESULT_NAME.match(name) or name in (".", ".."):
        return None
    folder = run / layout.TEST_DIR / name
    data = read_metrics(folder)
    if data is None:
        return None
    rows = []
    for row in data.get("per_image") or []:
        image = f"{layout.TEST_DIR}/{name}/{row.get('image')}.png"
        rows.append({**row, "file": image if (run / image).is_file() else None})
    return {
        "name": name,
        "epoch": data.get("epoch"),
        "split": data.get("split"),
        "n_images": data.get("n_images"),
        "precision": data.get("precision"),
        "metrics": data.get("metrics") or {},
        "rows": rows,
    }


def split_size(run: Path, split: str, max_images: int | None) -> int | None:
    """How many images a test of ``split`` will write (the dataset the run used), or None."""
    try:
        config = json.loads((run / layout.CONFIG_FILE).read_text(encoding="utf-8"))
        root = Path(config["dataloader"]["dataroot"]) / split
        count = sum(1 for p in root.iterdir() if is_image_file(p))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return min(count, max_images) if max_images else count


def written_since(run: Path, since: float) -> int:
    """Triplets written under ``run/test/`` since ``since``: a running test's progress."""
    folder = run / layout.TEST_DIR
    if not folder.is_dir():
        return 0
    count = 0
    for sub in folder.iterdir():
        if sub.is_dir() and sub.stat().st_mtime >= since - 1:
            count += sum(1 for p in sub.glob("*.png") if p.stat().st_mtime >= since - 1)
    return count


def result_named_in(lines: list[str], run: Path) -> str | None:
    """The result folder the finished ``nectargan test`` printed as ``outputs: DIR``."""
    match = OUTPUTS_LINE.search("\n".join(lines))
    if not match:
        return None
    path = Path(match.group(1).strip())
    return path.name if path.parent.name == layout.TEST_DIR else None
