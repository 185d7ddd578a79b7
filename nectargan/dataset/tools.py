"""Folder tools: join separate A/B folders into A|B images, and split a folder by ratio."""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from nectargan.dataset.io import SPLITS, list_images, load_image, side_by_side
from nectargan.errors import DataExistsError, DataUserError, MissingDataError

# Long lists of unmatched names are cut to this many in error messages.
MAX_LISTED = 20


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Three non-negative train/val/test ratios summing to 1."""
    r = [float(v) for v in ratios]
    if len(r) != 3 or any(v < 0 or not math.isfinite(v) for v in r):
        raise DataUserError(
            f"ratios {list(ratios)} must be three non-negative numbers (train val test)"
        )
    if abs(sum(r) - 1.0) > 1e-6:
        raise DataUserError(f"ratios {list(ratios)} must sum to 1, they sum to {sum(r):g}")
    return r[0], r[1], r[2]


def split_counts(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """How many of ``n`` items go to train/val/test (largest-remainder rounding, sums to n)."""
    r = check_ratios(ratios)
    exact = [n * v for v in r]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(3), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts[0], counts[1], counts[2]


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return shown + (f" ... and {more} more" if more > 0 else "")


def _by_stem(folder: Path) -> dict[str, Path]:
    """Images keyed by name without extension, so 'x.jpg' in A matches 'x.png' in B."""
    found: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in found:
            raise DataUserError(
                f"'{folder}' holds two images named '{path.stem}' ({found[path.stem].name}, "
                f"{path.name}); names must be unique without extension"
            )
        found[path.stem] = path
    return found


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise MissingDataError(f"{what} '{path}' is not a directory")


def _ensure_empty_output(folder: Path) -> None:
    if folder.is_dir() and list_images(folder):
        raise DataExistsError(f"output folder '{folder}' already holds images; use an empty one")
    folder.mkdir(parents=True, exist_ok=True)


def _pair_one_folder(a_dir: Path, b_dir: Path, out_dir: Path, resize: bool) -> int:
    a, b = _by_stem(a_dir), _by_stem(b_dir)
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        msg = [f"A '{a_dir}' and B '{b_dir}' do not match by file name:"]
        if only_a:
            msg.append(f"  only in A ({len(only_a)}): {_names(only_a)}")
        if only_b:
            msg.append(f"  only in B ({len(only_b)}): {_names(only_b)}")
        raise DataUserError("\n".join(msg))
    if not a:
        raise MissingDataError(f"no image files in '{a_dir}'")
    _ensure_empty_output(out_dir)
    for stem in sorted(a):
        img_a, img_b = load_image(a[stem], 3), load_image(b[stem], 3)
        if img_a.size != img_b.size:
            if not resize:
                raise DataUserError(
                    f"'{a[stem]}' is {img_a.size[0]}x{img_a.size[1]} but '{b[stem]}' is "
                    f"{img_b.size[0]}x{img_b.size[1]}; pass resize=True (--resize) to fit B to A"
                )
            img_b = img_b.resize(img_a.size, Image.BICUBIC)
        side_by_side(img_a, img_b).save(out_dir / f"{stem}.png")
    return len(a)


def pair_folders(
    a_dir: str | Path, b_dir: str | Path, out_dir: str | Path, resize: bool = False
) -> dict[str, int]:
    """Write ``out_dir/<name>.png`` = A|B for every name present in both folders.

    If A and B both hold train/val/test subfolders, each is paired into the same subfolder
    of ``out_dir`` (the pix2pix layout directly); otherwise the images directly inside are
    paired into ``out_dir`` and can then be split with ``split_dataset``. Returns counts.
    """
    a_dir, b_dir, out_dir = Path(a_dir), Path(b_dir), Path(out_dir)
    _require_dir(a_dir, "A folder")
    _require_dir(b_dir, "B folder")
    a_splits = [s for s in SPLITS if (a_dir / s).is_dir()]
    b_splits = [s for s in SPLITS if (b_dir / s).is_dir()]
    if a_splits != b_splits:
        raise DataUserError(
            f"A '{a_dir}' has split folders {a_splits} but B '{b_dir}' has {b_splits}; "
            f"they must match"
        )
    if not a_splits:
        return {".": _pair_one_folder(a_dir, b_dir, out_dir, resize)}
    return {s: _pair_one_folder(a_dir / s, b_dir / s, out_dir / s, resize) for s in a_splits}


def split_dataset(
    src: str | Path,
    out_dir: str | Path,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, int]:
    """Copy the images in ``src`` into ``out_dir/{train,val,test}/`` by ratio.

    The shuffle depends only on ``seed`` and the sorted file names, so reruns are identical.
    Splits with zero images are still created (empty) so the layout is always complete.
    """
    src, out_dir = Path(src), Path(out_dir)
    _require_dir(src, "source folder")
    if src.resolve() == out_dir.resolve():
        raise DataUserError(f"output folder '{out_dir}' must differ from the source folder")
    paths = list_images(src)
    if not paths:
        raise MissingDataError(f"no image files in '{src}'")
    random.Random(seed).shuffle(paths)
    counts = split_counts(len(paths), ratios)
    for split in SPLITS:
        _ensure_empty_output(out_dir / split)
    start = 0
    for split, count in zip(SPLITS, counts, strict=True):
        for path in paths[start : start + count]:
            shutil.copy2(path, out_dir / split / path.name)
        start += count
    return dict(zip(SPLITS, counts, strict=True))
