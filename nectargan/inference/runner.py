"""Run a backend over a list of images and write ``OUT/<name>.png`` for each, atomically.

Images are batched with others of the same (fitted) size, since a batch is one
tensor; in eval mode an image's output does not depend on its batch-mates, so
batching changes speed only. Each output is written to a temporary name and
renamed, so an interrupted run leaves whole PNGs or none.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

from nectargan.dataset.io import side_by_side as join_side_by_side
from nectargan.errors import DataUserError
from nectargan.inference.backends import Backend
from nectargan.inference.inputs import (
    InputItem,
    collect_inputs,
    read_input,
    readable_inputs,
    skipped_warning,
)
from nectargan.inference.memory import default_budget
from nectargan.inference.sizing import Fitted, fit_image, unfit_output
from nectargan.inference.tiling import TileRequest, choose_plan, run_tiled
from nectargan.utils.atomic import atomic_writer
from nectargan.utils.outputs import output_dir
from nectargan.utils.progress_bar import ProgressBar

# Pending images of mixed sizes are flushed once this many batches' worth wait.
MAX_PENDING_BATCHES = 4
PROGRESS_MIN_ITEMS = 2


@dataclass(frozen=True)
class InferOptions:
    mode: str = "pad"  # see nectargan.inference.sizing
    paired: bool = False
    side_by_side: bool = False
    batch_size: int = 1
    overwrite: bool = False
    tile: int | None = None  # None: automatic above the memory budget; 0: never; N: N px tiles
    tile_overlap: int | None = None  # None: a quarter tile (see nectargan.inference.tiling)
    memory_budget: int | None = None  # bytes; None: half the memory available on the device


@dataclass
class _Pending:
    item: InputItem
    image: Image.Image
    fitted: Fitted


def output_paths(items: list[InputItem], out_dir: Path) -> list[Path]:
    return [out_dir / item.out_name for item in items]


def refuse_inputs_as_outputs(items: list[InputItem], out_dir: Path) -> None:
    """Never write over an input, ``--overwrite`` or not: the image would be lost."""
    for item in items:
        target = out_dir / item.out_name
        if target.exists() and os.path.samefile(target, item.path):
            raise DataUserError(
                f"output '{target}' would replace the input image '{item.path}'; "
                "choose another --output folder"
            )


def refuse_existing(paths: list[Path], limit: int = 5) -> None:
    """Stop before any work if outputs exist (``--overwrite`` replaces them)."""
    existing = [p for p in paths if p.exists()]
    if existing:
        shown = ", ".join(str(p) for p in existing[:limit])
        more = f" and {len(existing) - limit} more" if len(existing) > limit else ""
        raise DataUserError(
            f"{len(existing)} output file(s) already exist ({shown}{more}); "
            "pass --overwrite to replace them or choose another --output"
        )


def model_input_hw(backend: Backend, mode: str) -> tuple[int, int] | None:
    """The fixed size to resize to: a static model's own, else the training crop size."""
    info = backend.info
    if info.static_hw is not None:
        return info.static_hw
    return (info.crop_size, info.crop_size) if mode == "resize" else None


def infer_images(
    backend: Backend,
    items: list[InputItem],
    out_dir: str | Path,
    options: InferOptions,
    stream: TextIO | None = None,
) -> dict:
    """Write one output per item into ``out_dir``; returns counts and timing."""
    if options.batch_size < 1:
        raise DataUserError(f"--batch-size: expected a number >= 1, got {options.batch_size}")
    out_dir = Path(out_dir)
    info = backend.info
    mode = "resize" if info.static_hw is not None else options.mode
    request = tile_request(backend, mode, options)
    refuse_inputs_as_outputs(items, out_dir)
    output_dir(out_dir, "--output")
    if not options.overwrite:
        refuse_existing(output_paths(items, out_dir))
    target = model_input_hw(backend, mode)
    stream = stream if stream is not None else sys.stderr
    said: set[str] = set()
    bar = (
        ProgressBar(len(items), desc="infer", stream=stream)
        if len(items) >= PROGRESS_MIN_ITEMS
        else None
    )
    started = time.monotonic()
    groups: dict[tuple[int, int], list[_Pending]] = {}
    written: list[Path] = []

    def flush(key: tuple[int, int]) -> None:
        batch = groups.pop(key)
        outs = backend.run(np.stack([p.fitted.array for p in batch]))
        for pending, out in zip(batch, outs, strict=True):
            written.append(_write(pending, out, out_dir, options.side_by_side))
        if bar is not None:
            bar.update(len(batch))

    for item in items:
        image = read_input(item.path, info.channels, options.paired, info.direction)
        fitted = fit_image(image, mode, info.size_multiple, target)
        plan, note = (
            (None, "")
            if request is None
            else choose_plan(info, fitted.model_hw, options.batch_size, request)
        )
        if note and note not in said:
            said.add(note)
            print(f"{item.path.name}: {note}" if len(items) > 1 else note, file=stream)
        if plan is not None:
            out = run_tiled(backend.run, fitted.array, plan, options.batch_size)
            written.append(
                _write(_Pending(item, image, fitted), out, out_dir, options.side_by_side)
            )
            if bar is not None:
                bar.update(1)
            continue
        group = groups.setdefault(fitted.model_hw, [])
        group.append(_Pending(item, image, fitted))
        if len(group) >= options.batch_size:
            flush(fitted.model_hw)
        elif sum(map(len, groups.values())) >= MAX_PENDING_BATCHES * options.batch_size:
            flush(max(groups, key=lambda k: len(groups[k])))
    for key in list(groups):
        flush(key)
    if bar is not None:
        bar.close()
    return {
        "n_images": len(written),
        "outputs": written,
        "seconds": time.monotonic() - started,
        "mode": mode,
        "backend": backend.name,
    }


def tile_request(backend: Backend, mode: str, options: InferOptions) -> TileRequest | None:
    """What tiling may do here; None when it cannot apply (resized or fixed-size inputs)."""
    asked = options.tile not in (None, 0)
    if options.tile is not None and options.tile < 0:
        raise DataUserError(
            f"--tile: expected a tile size in pixels, 0 (off) or auto, got {options.tile}"
        )
    if options.tile_overlap is not None and options.tile_overlap < 0:
        raise DataUserError(f"--tile-overlap: expected pixels >= 0, got {options.tile_overlap}")
    if mode != "pad":
        if asked:
            why = (
                f"this model takes only {backend.info.static_hw[0]}x{backend.info.static_hw[1]} inputs (exported with --static)"
                if backend.info.static_hw is not None
                else "--resize runs every image at the training crop size"
            )
            raise DataUserError(f"--tile {options.tile}: tiles need the default pad mode; {why}")
        return None
    if options.tile is not None or options.memory_budget is not None:
        budget, source = options.memory_budget, "--memory-budget"
    else:
        budget, source = default_budget(getattr(backend, "memory_device", "cpu"))
    runtime = getattr(backend, "runtime", "torch")  # a backend of the caller's may not say
    return TileRequest(options.tile, options.tile_overlap, budget, source, runtime)


def _write(pending: _Pending, out: np.ndarray, out_dir: Path, side_by_side: bool) -> Path:
    result = unfit_output(out, pending.fitted)
    if side_by_side:
        result = join_side_by_side(pending.image.convert(result.mode), result)
    path = out_dir / pending.item.out_name
    with atomic_writer(path, fsync=False) as handle:
        result.save(handle, format="PNG")
    return path


def run_on_inputs(
    backend: Backend,
    specs: list[str],
    out_dir: str | Path,
    options: InferOptions,
    recursive: bool = False,
    stream: TextIO | None = None,
) -> dict:
    """Collect ``specs`` (files, folders, globs), skip unreadable found files, run, write.

    The one entry point behind ``nectargan infer`` for both backends. Raises
    :class:`DataUserError` for a bad named file or when nothing is left to run.
    """
    stream = stream if stream is not None else sys.stderr
    info = backend.info
    found = readable_inputs(
        collect_inputs(list(specs), recursive), info.channels, options.paired, info.direction
    )
    if found.skipped:
        print(skipped_warning(found.skipped), file=stream)
    if not found.items:
        raise DataUserError(
            f"no readable input images in {' '.join(map(str, specs)) or '(nothing given)'}"
            + (
                f" ({len(found.skipped)} unreadable or non-image file(s) skipped)"
                if found.skipped
                else ""
            )
        )
    result = infer_images(backend, found.items, out_dir, options, stream)
    result["skipped"] = [str(p) for p, _ in found.skipped]
    return result
