"""A picture of what the model will see: N pairs after augmentation, A | B per row.

Uses the trainer's own dataset construction (``make_dataset``), so the grid shows
exactly the pipeline a run with this config would feed the generator; the val and
test splits get the evaluation transform (no augmentation), as in training.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from nectargan.dataset.tensors import to_uint8
from nectargan.errors import DataUserError
from nectargan.utils.atomic import atomic_writer
from nectargan.utils.outputs import output_file

GAP = 4  # pixels of white between the columns and rows
MAX_PAIRS = 256


def _image(t: torch.Tensor) -> Image.Image:
    arr = to_uint8(t)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def pair_grid(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> Image.Image:
    """One row per pair: input | target, separated by white gaps."""
    tiles = [[_image(t) for t in pair] for pair in pairs]
    w, h = tiles[0][0].size
    grid = Image.new("RGB", (2 * w + 3 * GAP, len(tiles) * (h + GAP) + GAP), "white")
    for row, (a, b) in enumerate(tiles):
        top = GAP + row * (h + GAP)
        grid.paste(a.convert("RGB"), (GAP, top))
        grid.paste(b.convert("RGB"), (2 * GAP + w, top))
    return grid


def sample_pairs(dataset, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` items (the whole set cycled if it is smaller), drawn and augmented from ``seed``."""
    if not 1 <= n <= MAX_PAIRS:
        raise DataUserError(f"--n {n} must be between 1 and {MAX_PAIRS}")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=gen).tolist()
    out = []
    for k in range(n):
        x, y = dataset.load_pair(order[k % len(order)])
        out.append(dataset.transform(x, y, gen))
    return out


def write_preview(dataset, n: int, seed: int, output: str | Path) -> Path:
    """Write the grid as PNG (atomically: a half-written file never appears)."""
    output = output_file(output, "--output", "a .png file name")
    grid = pair_grid(sample_pairs(dataset, n, seed))
    with atomic_writer(output) as f:
        grid.save(f, format="PNG", optimize=True)
    return output
