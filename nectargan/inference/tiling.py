"""Tiled inference: run a large image as overlapping tiles and blend them without seams.

A generator's activations grow with the image (about 3.6 GiB for 12 MP through a 14M
parameter U-Net on CPU), so above a memory budget the padded image is cut into square
tiles. Tiles start on multiples of ``2**n_downs``, so every tile's strided convolutions
sample the same grid as a whole-image pass and a tile's interior matches it closely;
only a tile's margin, which lacks the context beyond it, differs. Each tile's output is
weighted by a window that is 1 in the middle and falls smoothly (raised cosine) to near
0 across the overlap at every side that has a neighbour, and the weighted sum is
divided by the summed weights. The weights are continuous, so the blend has no step
at a tile border, and a margin's weaker pixels count least.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nectargan.inference.memory import format_bytes, forward_bytes, image_bytes
from nectargan.inference.model_info import ModelInfo

# Default overlap: this fraction of the tile, to the nearest size multiple (at least one).
OVERLAP_FRACTION = 0.25


@dataclass(frozen=True)
class TilePlan:
    """Square tiles of ``tile`` pixels overlapping by at least ``overlap``, on a ``multiple`` grid."""

    tile: int
    overlap: int
    multiple: int

    def starts(self, length: int) -> list[int]:
        """Tile start offsets along an axis of ``length`` (a multiple of ``multiple``)."""
        if length <= self.tile:
            return [0]
        step = self.tile - self.overlap
        count = math.ceil((length - self.tile) / step) + 1
        # Spread the tiles evenly, each start on the grid, the last one flush with the end.
        spread = (length - self.tile) / (count - 1)
        starts = [
            min(length - self.tile, round(i * spread / self.multiple) * self.multiple)
            for i in range(count)
        ]
        return sorted(set(starts))

    def tile_count(self, height: int, width: int) -> int:
        return len(self.starts(height)) * len(self.starts(width))


def round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


def make_plan(tile: int, multiple: int, overlap: int | None = None) -> TilePlan:
    """A plan for ``tile`` (rounded up to ``multiple``); overlap defaults to a quarter tile."""
    tile = round_up(tile, multiple)
    if overlap is None:  # the nearest multiple: rounding up would cost whole extra tiles
        overlap = max(multiple, round(tile * OVERLAP_FRACTION / multiple) * multiple)
    overlap = min(round_up(overlap, multiple), tile - multiple) if tile > multiple else 0
    return TilePlan(tile, max(overlap, 0), multiple)


def ramp(length: int, overlap: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    """1-D weights: 1 inside, a raised-cosine fade over ``overlap`` at the faded ends.

    The fade never reaches 0 (its first value is sin^2(pi/4/overlap)), so every pixel
    keeps a positive total weight even where only one tile covers it.
    """
    weights = np.ones(length, dtype=np.float32)
    if overlap <= 0:
        return weights
    n = min(overlap, length // 2)
    fade = np.sin(0.5 * np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n) ** 2
    if fade_start:
        weights[:n] = fade
    if fade_end:
        weights[length - n :] = fade[::-1]
    return weights


def _window(
    plan: TilePlan, y: int, x: int, th: int, tw: int, height: int, width: int
) -> np.ndarray:
    rows = ramp(th, plan.overlap, y > 0, y + th < height)
    cols = ramp(tw, plan.overlap, x > 0, x + tw < width)
    return rows[:, None] * cols[None, :]


def run_tiled(
    run: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    plan: TilePlan,
    batch_size: int = 1,
) -> np.ndarray:
    """The generator output for one ``(C, H, W)`` image, computed tile by tile and blended.

    ``run`` maps an ``(N, C, h, w)`` batch to its outputs (a backend's ``run``); up to
    ``batch_size`` tiles go through it at once. H and W must be multiples of the plan's
    ``multiple`` (the reflect padding of :mod:`nectargan.inference.sizing` sees to it).
    """
    _, height, width = image.shape
    th, tw = min(plan.tile, height), min(plan.tile, width)
    boxes = [(y, x) for y in plan.starts(height) for x in plan.starts(width)]
    total: np.ndarray | None = None
    weight_sum = np.zeros((height, width), dtype=np.float32)
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first : first + batch_size]
        batch = np.stack([image[:, y : y + th, x : x + tw] for y, x in chunk])
        outs = run(np.ascontiguousarray(batch))
        if total is None:
            total = np.zeros((outs.shape[1], height, width), dtype=np.float32)
        for (y, x), out in zip(chunk, outs, strict=True):
            window = _window(plan, y, x, th, tw, height, width)
            total[:, y : y + th, x : x + tw] += out * window
            weight_sum[y : y + th, x : x + tw] += window
    assert total is not None
    total /= weight_sum  # in place: a second whole-image float copy is what tiling avoids
    return total


@dataclass(frozen=True)
class TileRequest:
    """What the user asked for: ``tile`` None (automatic), 0 (never) or a size in pixels."""

    tile: int | None = None
    overlap: int | None = None
    budget_bytes: int | None = None  # None: a share of the memory available now
    budget_source: str = ""
    runtime: str = "torch"  # whose memory overhead the estimate assumes (memory.py)


def auto_tile(info: ModelInfo, hw: tuple[int, int], batch: int, request: TileRequest) -> int:
    """The largest square tile (a multiple of the size multiple) whose pass fits the budget
    left once the whole-image buffers of tiling are counted."""
    m = info.size_multiple
    budget = (request.budget_bytes or 0) - image_bytes(info.channels, *hw)

    def fits(side: int) -> bool:
        need = forward_bytes(info, side, side, batch, request.runtime)
        return need is not None and need <= budget

    side = 2 * m  # the smallest tile that still leaves room for an overlap
    while side < max(hw) and fits(side + m):
        side += m
    return side


def choose_plan(
    info: ModelInfo, hw: tuple[int, int], batch: int, request: TileRequest
) -> tuple[TilePlan | None, str]:
    """(the plan for a padded ``hw`` input, or None for one pass; the sentence saying why)."""
    height, width = hw
    m = info.size_multiple
    if request.tile == 0:
        return None, ""
    if request.tile is not None:
        plan = make_plan(request.tile, m, request.overlap)
        rounded = (
            f" (--tile {request.tile} rounded up to a multiple of {m})"
            if plan.tile != request.tile
            else ""
        )
        return _if_needed(plan, hw), f"{_describe(plan, hw)}{rounded}, as --tile asked"
    need = forward_bytes(info, height, width, batch, request.runtime)
    budget = request.budget_bytes
    if need is None or budget is None or need <= budget:
        return None, ""
    plan = make_plan(auto_tile(info, hw, batch, request), m, request.overlap)
    tiled_need = image_bytes(info.channels, *hw) + (
        forward_bytes(info, plan.tile, plan.tile, batch, request.runtime) or 0
    )
    over = f"; even these need about {format_bytes(tiled_need)}" if tiled_need > budget else ""
    return _if_needed(plan, hw), (
        f"{_describe(plan, hw)}: one {width}x{height} pass needs about {format_bytes(need)}, over "
        f"the {format_bytes(budget)} budget ({request.budget_source}){over}; --tile 0 turns tiling off"
    )


def _if_needed(plan: TilePlan, hw: tuple[int, int]) -> TilePlan | None:
    return plan if plan.tile_count(*hw) > 1 else None


def _describe(plan: TilePlan, hw: tuple[int, int]) -> str:
    n = plan.tile_count(*hw)
    if n <= 1:
        return f"one pass ({hw[1]}x{hw[0]} fits one {plan.tile} px tile)"
    return f"tiled: {n} tiles of {plan.tile} px, overlap {plan.overlap} px"
