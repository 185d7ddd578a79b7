"""Check that a folder is a usable pix2pix dataset: ``train/`` of readable A|B images, 2:1."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from nectargan.dataset.io import SPLITS, ImageReadError, list_images, load_image
from nectargan.errors import DataUserError

# Fully decoding every image of a 50,000-image set would take minutes; the first
# few of each split are decoded, every file's header is read for its size.
DECODE_PER_SPLIT = 8


class LayoutError(DataUserError):
    """The folder is not a pix2pix dataset (or holds images it cannot use)."""


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as exc:  # PIL raises many types for broken files
        raise LayoutError(f"cannot read image file '{path}': {exc}") from exc


def check_layout(root: Path) -> dict[str, int]:
    """Image counts per split present; raises LayoutError naming the first problem."""
    if not (root / "train").is_dir():
        raise LayoutError(
            f"'{root}' has no train/ folder; expected {root}/train/ (and val/, test/) "
            f"holding side-by-side A|B images"
        )
    counts: dict[str, int] = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            continue
        paths = list_images(folder)
        for i, path in enumerate(paths):
            try:
                w, h = load_image(path).size if i < DECODE_PER_SPLIT else _header_size(path)
            except ImageReadError as exc:
                raise LayoutError(str(exc)) from None
            if w != 2 * h:
                raise LayoutError(
                    f"'{path}' is {w}x{h}; an A|B pair is twice as wide as it is high"
                )
        counts[split] = len(paths)
    if not counts["train"]:
        raise LayoutError(f"'{root / 'train'}' holds no image files")
    return counts
