"""Spot images that cannot be side-by-side ``A|B`` pairs before training on their halves.

Why: a paired dataset stores each pair as one image twice as wide as tall.
A square image (a folder of plain photos, the wrong split) still loads, is
cut down the middle and trains silently on two halves that are no pair.
Only image headers are read, so the check costs milliseconds per thousand files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image


def not_side_by_side(paths: Iterable[Path]) -> list[tuple[Path, tuple[int, int]]]:
    """``(path, (width, height))`` of every image whose width is not twice its height."""
    odd = []
    for path in paths:
        try:
            with Image.open(path) as img:
                size = img.size
        except OSError:
            continue  # unreadable files fail later, with their own message
        if size[0] != 2 * size[1]:
            odd.append((Path(path), size))
    return odd


def warn_if_not_side_by_side(paths: list[Path], folder: Path, log: Callable[[str], None]) -> int:
    """One warning with the count of such images in ``folder``; returns the count."""
    odd = not_side_by_side(paths)
    if odd:
        first, (w, h) = odd[0]
        log(
            f"warning: {len(odd)} of {len(paths)} images in {folder} are not twice as wide as "
            f"tall (e.g. {first.name} is {w}x{h}); a paired dataset holds A|B side by side, so "
            "each of these is cut into two halves that are probably not a pair"
        )
    return len(odd)
