"""Folder tools: join separate A/B folders into A|B images, and split a folder by ratio."""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from nectargan.dataset.io import SPLITS, list_images, load_image, side_by_side
from nectargan.errors import DataExistsError, DataUserError, MissingDataError
from nectargan.utils.outputs import output_dir

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


def _refuse_images(folder: Path) -> None:
    if folder.is_dir() and list_images(folder):
        raise DataExistsError(f"output folder '{folder}' already holds images; use an empty one")


@contextmanager
def _staged(out_dir: Path) -> Iterator[Path]:
    """A hidden folder in ``out_dir`` whose files move into ``out_dir`` once all are written.

    A bad image halfway, a full disk or Ctrl-C then leaves ``out_dir`` as it was, not
    a partial dataset that the rerun would refuse ("already holds images"). The
    folder's dot-name keeps a ``kill -9`` leftover out of :func:`list_images`.
    """
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield stage
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            target = out_dir / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _matched(a_dir: Path, b_dir: Path) -> dict[str, tuple[Path, Path]]:
    """A and B images by shared name; every mismatch is reported before anything is written."""
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
    return {stem: (a[stem], b[stem]) for stem in sorted(a)}


def _write_pairs(pairs: dict[str, tuple[Path, Path]], dest: Path, resize: bool) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    for stem, (path_a, path_b) in pairs.items():
        img_a, img_b = load_image(path_a, 3), load_image(path_b, 3)
        if img_a.size != img_b.size:
            if not resize:
                raise DataUserError(
                    f"'{path_a}' is {img_a.size[0]}x{img_a.size[1]} but '{path_b}' is "
                    f"{img_b.size[0]}x{img_b.size[1]}; pass resize=True (--resize) to fit B to A"
                )
            img_b = img_b.resize(img_a.size, Image.BICUBIC)
        side_by_side(img_a, img_b).save(dest / f"{stem}.png")
    return len(pairs)


def pair_folders(
    a_dir: str | Path, b_dir: str | Path, out_dir: str | Path, resize: bool = False
) -> dict[str, int]:
    """Write ``out_dir/<name>.png`` = A|B for every name present in both folders.

    If A and B both hold train/val/test subfolders, each is paired into the same subfolder
    of ``out_dir`` (the pix2pix layout directly); otherwise the images directly inside are
    paired into ``out_dir`` and can then be split with ``split_dataset``. Returns counts.
    All or nothing: the images appear in ``out_dir`` only once every pair is written.
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
    folders = {s: (a_dir / s, b_dir / s) for s in a_splits} or {".": (a_dir, b_dir)}
    matched = {split: _matched(a, b) for split, (a, b) in folders.items()}
    output_dir(out_dir, "output folder")
    for split in matched:
        _refuse_images(out_dir / split)
    with _staged(out_dir) as stage:
        return {split: _write_pairs(m, stage / split, resize) for split, m in matched.items()}


def split_dataset(
    src: str | Path,
    out_dir: str | Path,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, int]:
    """Copy the images in ``src`` into ``out_dir/{train,val,test}/`` by ratio.

    The shuffle depends only on ``seed`` and the sorted file names, so reruns are identical.
    Splits with zero images are still created (empty) so the layout is always complete.
    All or nothing, as for :func:`pair_folders`.
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
    output_dir(out_dir, "output folder")
    for split in SPLITS:
        _refuse_images(out_dir / split)
    with _staged(out_dir) as stage:
        start = 0
        for split, count in zip(SPLITS, counts, strict=True):
            (stage / split).mkdir()
            for path in paths[start : start + count]:
                shutil.copy2(path, stage / split / path.name)
            start += count
    for split in SPLITS:
        (out_dir / split).mkdir(exist_ok=True)
    return dict(zip(SPLITS, counts, strict=True))
