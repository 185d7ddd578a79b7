"""A picture of what the model will see: N pairs after augmentation, in a grid of A | B cells.

Uses the trainer's own dataset construction (``make_dataset``), so the grid shows
exactly the pipeline a run with this config would feed the generator; the val and
test splits get the evaluation transform (no augmentation), as in training.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from nectargan.dataset.tensors import to_uint8
from nectargan.errors import DataUserError
from nectargan.utils.atomic import atomic_writer
from nectargan.utils.outputs import output_file

GAP = 4  # pixels of white between A and B, and between rows
PAIR_GAP = 3 * GAP  # wider between pairs side by side, so A|B cells read as units
MAX_PAIRS = 256
MAX_COLUMNS = 16
# The suffix the user names decides the format written (a .jpg holding PNG bytes
# confuses viewers and uploads that trust the name).
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
OUTPUT_EXPECTED = "an image file name (.png, .jpg, ...)"
SAVE_OPTIONS = {"PNG": {"optimize": True}, "JPEG": {"quality": 92}, "WEBP": {"quality": 92}}


@dataclass(frozen=True)
class Preview:
    """What was drawn: the grid, how many pairs it shows, and a note when ``n`` was adjusted."""

    grid: Image.Image
    shown: int
    note: str | None = None


def _image(t: torch.Tensor) -> Image.Image:
    arr = to_uint8(t)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def auto_columns(n: int) -> int:
    """Columns that make ``n`` A|B cells (2:1 each) about as wide as a 16:9 screen."""
    return max(1, min(n, MAX_COLUMNS, round(math.sqrt(0.9 * n))))


def check_columns(columns: int) -> int:
    """0 means auto; otherwise 1..MAX_COLUMNS."""
    if not 0 <= columns <= MAX_COLUMNS:
        raise DataUserError(
            f"--columns {columns} must be between 1 and {MAX_COLUMNS} (or 0 for automatic)"
        )
    return columns


def pair_grid(pairs: list[tuple[torch.Tensor, torch.Tensor]], columns: int = 1) -> Image.Image:
    """Pairs left to right, then top to bottom: each cell input | target, white gaps between."""
    tiles = [[_image(t) for t in pair] for pair in pairs]
    w, h = tiles[0][0].size
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    cell = 2 * w + GAP
    width = GAP + columns * cell + (columns - 1) * PAIR_GAP + GAP
    grid = Image.new("RGB", (width, rows * (h + GAP) + GAP), "white")
    for k, (a, b) in enumerate(tiles):
        row, col = divmod(k, columns)
        left, top = GAP + col * (cell + PAIR_GAP), GAP + row * (h + GAP)
        grid.paste(a.convert("RGB"), (left, top))
        grid.paste(b.convert("RGB"), (left + w + GAP, top))
    return grid


def pairs_to_show(n: int, available: int, augmented: bool, split: str) -> tuple[int, str | None]:
    """How many pairs to draw for ``--n n``, and a note when the split has fewer.

    Augmented, a repeated pair is a new draw worth seeing (said so); without
    augmentation a repeat is an identical copy, so the grid stops at the split's size.
    """
    if not 1 <= n <= MAX_PAIRS:
        raise DataUserError(f"--n {n} must be between 1 and {MAX_PAIRS}")
    if n <= available:
        return n, None
    if augmented:
        return n, (
            f"{split}/ has {available} pair(s); the {n} shown repeat them, each augmented anew"
        )
    return available, f"{split}/ has {available} pair(s); showing {available}, not {n}"


def sample_pairs(dataset, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` items (the whole set cycled if it is smaller), drawn and augmented from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=gen).tolist()
    out = []
    for k in range(n):
        x, y = dataset.load_pair(order[k % len(order)])
        out.append(dataset.transform(x, y, gen))
    return out


def render_preview(dataset, n: int, seed: int, columns: int = 0) -> Preview:
    """The grid of ``n`` pairs (fewer for an unaugmented split that has fewer)."""
    check_columns(columns)
    augmented = bool(getattr(dataset, "is_train", True))
    shown, note = pairs_to_show(n, len(dataset), augmented, getattr(dataset, "split", "the"))
    grid = pair_grid(sample_pairs(dataset, shown, seed), columns or auto_columns(shown))
    return Preview(grid, shown, note)


def image_format(output: str | Path) -> str:
    """The PIL format the file name asks for; an unknown suffix is refused by name."""
    if Path(output).is_dir():  # "is a folder" says more than "has no suffix"
        output_file(output, "--output", OUTPUT_EXPECTED)
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise DataUserError(
            f"--output '{output}' has suffix '{suffix or '(none)'}'; expected one of "
            f"{', '.join(FORMATS)}"
        )
    return FORMATS[suffix]


def encode(grid: Image.Image, fmt: str = "PNG") -> bytes:
    """The grid as file bytes in ``fmt`` (e.g. for a web page)."""
    buf = io.BytesIO()
    grid.save(buf, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
    return buf.getvalue()


def write_preview(dataset, n: int, seed: int, output: str | Path, columns: int = 0) -> Preview:
    """Write the grid in the format its suffix names (atomically: never half a file)."""
    fmt = image_format(output)
    output = output_file(output, "--output", OUTPUT_EXPECTED)
    preview = render_preview(dataset, n, seed, columns)
    with atomic_writer(output) as f:
        f.write(encode(preview.grid, fmt))
    return preview
