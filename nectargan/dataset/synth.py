"""Synthetic paired data: flat label maps (A) -> shaded, textured renderings (B).

The built-in default dataset, so training needs no download. Every B pixel is a
deterministic function of the shapes in A (class colour, bevel/dome shading lit from the
top-left, wood-grain rings, specular highlights, drop shadows), mostly computable from a
local neighbourhood of the label map, so a small U-Net visibly learns it within minutes
on a CPU. Each image depends only on (seed, index), never on n or the split ratios.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nectargan.dataset.io import SPLITS, list_images
from nectargan.dataset.tools import check_ratios, split_counts
from nectargan.errors import DataExistsError, DataUserError
from nectargan.utils.json_files import read_json_object
from nectargan.utils.numbers import is_int
from nectargan.utils.outputs import output_dir

MANIFEST = "dataset.json"
FORMAT_VERSION = 1
MIN_SIZE = 16
# Rendering holds a dozen full-size arrays at once: 2048 px is ~1 GB, 100000 px would be 150 GB.
MAX_SIZE = 2048

# Label-map colours (A): background + 4 material classes.
LABEL_COLORS = np.array(
    [[30, 30, 90], [220, 60, 60], [60, 200, 80], [240, 200, 40], [70, 120, 240]], np.uint8
)
# Rendered base colours (B) for clay, metal, wood, plastic.
BASE_COLORS = np.array(
    [[0, 0, 0], [196, 110, 70], [150, 160, 180], [170, 120, 60], [40, 170, 170]], np.float32
)
SPECULAR = np.array([0.0, 0.0, 0.9, 0.0, 0.5], np.float32)  # per class highlight strength
WOOD = 3
BACKGROUND_TOP = np.array([215, 205, 185], np.float32)
BACKGROUND_BOTTOM = np.array([165, 155, 140], np.float32)
LIGHT = np.array([-1.0, -1.0, 1.6], np.float32) / np.linalg.norm([-1.0, -1.0, 1.6])
HALFWAY = (LIGHT + [0, 0, 1]) / np.linalg.norm(LIGHT + [0, 0, 1])


@dataclass
class Canvas:
    """Per-pixel layers built while painting shapes back to front."""

    label: np.ndarray  # int class, 0 = background
    height: np.ndarray  # relief in pixels, drives the shading normals
    depth: np.ndarray  # distance inside the top shape, drives wood rings


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return ys, xs


def _shape_sdf(
    kind: int, rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray
) -> tuple[np.ndarray, float | None]:
    """Signed distance in pixels (positive inside) and, for circles, the dome radius.

    kind: 0 circle, 1 axis-aligned box, 2 equilateral triangle at a random angle.
    """
    size = ys.shape[0]
    cy, cx = rng.uniform(0.12, 0.88, 2) * size
    if kind == 0:
        r = rng.uniform(0.1, 0.24) * size
        return r - np.hypot(ys - cy, xs - cx), r
    if kind == 1:
        hh, hw = rng.uniform(0.08, 0.22, 2) * size
        return np.minimum(hh - np.abs(ys - cy), hw - np.abs(xs - cx)), None
    r = rng.uniform(0.14, 0.3) * size
    theta = rng.uniform(0, 2 * np.pi)
    edges = [
        (xs - cx) * np.cos(a) + (ys - cy) * np.sin(a)
        for a in (theta, theta + 2 * np.pi / 3, theta + 4 * np.pi / 3)
    ]
    return r / 2 - np.maximum(np.maximum(edges[0], edges[1]), edges[2]), None


def _paint_shapes(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> Canvas:
    size = ys.shape[0]
    bevel = max(1.5, size / 16)
    canvas = Canvas(
        np.zeros((size, size), np.int64), np.zeros((size, size), np.float32), np.zeros_like(ys)
    )
    for _ in range(int(rng.integers(2, 6))):
        kind, cls = int(rng.integers(0, 3)), int(rng.integers(1, 5))
        sdf, dome = _shape_sdf(kind, rng, ys, xs)
        inside = sdf > 0
        if dome is not None:  # a flattened hemisphere over the circle
            relief = np.sqrt(np.clip(1 - ((dome - sdf) / dome) ** 2, 0, 1)) * dome * 0.8
        else:  # bevelled slab
            relief = np.clip(sdf / bevel, 0, 1) * bevel
        canvas.label[inside] = cls
        canvas.height[inside] = relief[inside]
        canvas.depth[inside] = sdf[inside]
    return canvas


def _normals(height: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(height)
    n = np.stack([-gx, -gy, np.ones_like(height)], axis=-1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def _background(size: int, label: np.ndarray) -> np.ndarray:
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    bg = np.broadcast_to(BACKGROUND_TOP * (1 - t) + BACKGROUND_BOTTOM * t, (size, size, 3)).copy()
    shift = max(1, size // 24)  # drop shadow cast down-right, away from the light
    shadow = np.zeros((size, size), bool)
    shadow[shift:, shift:] = label[:-shift, :-shift] > 0
    bg[shadow] *= 0.55
    return bg


def _render(canvas: Canvas, size: int) -> np.ndarray:
    n = _normals(canvas.height)
    diffuse = np.clip(n @ LIGHT, 0, 1)
    spec = np.clip(n @ HALFWAY, 0, 1) ** 24 * SPECULAR[canvas.label]
    base = BASE_COLORS[canvas.label]
    rings = np.where(canvas.label == WOOD, 0.8 + 0.2 * np.sin(canvas.depth * (2 * np.pi / 4)), 1)
    obj = base * (rings * (0.35 + 0.75 * diffuse))[..., None] + 255 * spec[..., None]
    out = np.where((canvas.label > 0)[..., None], obj, _background(size, canvas.label))
    return np.clip(out, 0, 255).astype(np.uint8)


def render_pair(size: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) as (size, size, 3) uint8 arrays for item ``index`` of dataset ``seed``."""
    rng = np.random.default_rng([seed, index])
    ys, xs = _grid(size)
    canvas = _paint_shapes(rng, ys, xs)
    return LABEL_COLORS[canvas.label], _render(canvas, size)


def _manifest(n: int, size: int, seed: int, ratios: tuple[float, float, float]) -> dict:
    counts = dict(zip(SPLITS, split_counts(n, ratios), strict=True))
    return {
        "generator": "nectargan.dataset.synth",
        "version": FORMAT_VERSION,
        "n": n,
        "size": size,
        "seed": seed,
        "ratios": list(ratios),
        "counts": counts,
        "layout": "A|B side by side; A = label map, B = rendering",
    }


def _read_manifest(out_dir: Path) -> dict | None:
    return read_json_object(out_dir / MANIFEST)


def _same_settings(stored: dict | None, wanted: dict) -> bool:
    """Timing fields differ run to run; everything else must match to reuse a dataset."""
    return stored is not None and {k: v for k, v in stored.items() if k != "seconds"} == wanted


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    """Refuse to mix with existing images unless asked to replace them."""
    existing = [p for s in SPLITS if (out_dir / s).is_dir() for p in list_images(out_dir / s)]
    if existing and not overwrite:
        raise DataExistsError(
            f"'{out_dir}' already holds {len(existing)} images but no finished dataset with "
            f"these settings; choose another folder or pass overwrite=True (--overwrite)"
        )
    for path in existing:
        path.unlink()
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)


def _check_args(n: int, size: int) -> None:
    if not is_int(n) or n < 1:
        raise DataUserError(f"n {n!r} must be a positive integer number of pairs")
    if not is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise DataUserError(
            f"size {size!r} must be an integer >= {MIN_SIZE} and <= {MAX_SIZE} pixels"
        )


def generate_synthetic_dataset(
    out_dir: str | Path,
    n: int = 1000,
    size: int = 64,
    seed: int = 0,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    overwrite: bool = False,
) -> Path:
    """Write ``n`` A|B pairs of ``size``x``size`` px into ``out_dir/{train,val,test}``.

    Idempotent: if ``out_dir`` already holds a finished dataset with the same settings
    (its ``dataset.json`` is written last), nothing is regenerated. Returns ``out_dir``.
    """
    _check_args(n, size)
    out_dir = Path(out_dir)
    manifest = _manifest(n, size, seed, check_ratios(ratios))
    output_dir(out_dir, "output folder")
    if _same_settings(_read_manifest(out_dir), manifest):
        return out_dir
    _prepare_output(out_dir, overwrite)
    start = time.perf_counter()
    index = 0
    for split, count in manifest["counts"].items():
        for _ in range(count):
            a, b = render_pair(size, seed, index)
            img = Image.fromarray(np.concatenate([a, b], axis=1))
            img.save(out_dir / split / f"{index:06d}.png", compress_level=1)
            index += 1
    manifest["seconds"] = round(time.perf_counter() - start, 3)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir
