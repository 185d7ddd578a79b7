"""Folder tools: join separate A/B folders into A|B images, and split a folder by ratio.

Each tool is a plan (every input checked, nothing written: the dry run) and the
work (staged, all or nothing, with progress and cancel through a :class:`Task`).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from nectargan.dataset.io import (
    SPLITS,
    ImageReadError,
    header_size,
    list_images,
    load_image,
    other_files,
    probe_image,
    side_by_side,
)
from nectargan.dataset.task import Task, tick
from nectargan.errors import DataExistsError, DataUserError, MissingDataError
from nectargan.utils.outputs import check_output_dir, output_dir

# Long lists of unmatched names are cut to this many in error messages.
MAX_LISTED = 20
# A dry run's description names this many files per split, then counts the rest.
DESCRIBED = 5


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


def _check_output(out_dir: Path, splits: Sequence[str]) -> None:
    check_output_dir(out_dir, "output folder")
    for split in splits:
        _refuse_images(out_dir / split)


@contextmanager
def _removed_if_failed(out_dir: Path) -> Iterator[None]:
    """Folders this call creates for ``out_dir`` go again if it fails; existing ones stay.

    Only empty folders are removed, bottom up, so no file is ever deleted here.
    """
    created = None
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            break
        created = folder
    try:
        yield
    except BaseException:
        if created is not None and created.is_dir():
            for folder in sorted((p for p in created.rglob("*") if p.is_dir()), reverse=True):
                _rmdir_if_empty(folder)
            _rmdir_if_empty(created)
        raise


def _rmdir_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (or gone): leave it
        folder.rmdir()


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


def _describe(out_dir: Path, names: dict[str, list[str]], verb: str) -> list[str]:
    """Lines saying what a plan will write: per split, a count and the first names."""
    lines = []
    for split, files in names.items():
        where = out_dir if split == "." else out_dir / split
        shown = ", ".join(files[:DESCRIBED]) + (
            f" ... and {len(files) - DESCRIBED} more" if len(files) > DESCRIBED else ""
        )
        lines.append(f"{verb} {len(files)} image(s) to {where}/" + (f": {shown}" if files else ""))
    return lines


@dataclass
class PairPlan:
    """What ``pair_folders`` will write: for each split, output name -> (A file, B file)."""

    out_dir: Path
    resize: bool
    pairs: dict[str, dict[str, tuple[Path, Path]]]
    resized: list[str] = field(default_factory=list)  # names whose B will be fitted to A

    @property
    def counts(self) -> dict[str, int]:
        return {split: len(m) for split, m in self.pairs.items()}

    def describe(self) -> list[str]:
        names = {s: [f"{stem}.png" for stem in m] for s, m in self.pairs.items()}
        lines = _describe(self.out_dir, names, "would write")
        if self.resized:
            lines.append(f"B resized to A's size for {len(self.resized)}: {_names(self.resized)}")
        return lines


def _size_mismatches(plan: PairPlan, task: Task | None) -> None:
    """Compare A and B sizes from the headers; refuse without ``resize``, else note them."""
    total, done = sum(plan.counts.values()), 0
    for matched in plan.pairs.values():
        for stem, (path_a, path_b) in matched.items():
            (wa, ha), (wb, hb) = header_size(path_a), header_size(path_b)
            if (wa, ha) != (wb, hb):
                if not plan.resize:
                    raise DataUserError(
                        f"'{path_a}' is {wa}x{ha} but '{path_b}' is {wb}x{hb}; "
                        f"pass resize=True (--resize) to fit B to A"
                    )
                plan.resized.append(stem)
            done += 1
            if done % 64 == 0 or done == total:
                tick(task, done, total, "checking sizes")


def plan_pair(
    a_dir: str | Path,
    b_dir: str | Path,
    out_dir: str | Path,
    resize: bool = False,
    task: Task | None = None,
) -> PairPlan:
    """Check everything ``pair_folders`` needs (names, sizes, the output) and write nothing."""
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
    plan = PairPlan(out_dir, resize, {split: _matched(a, b) for split, (a, b) in folders.items()})
    _check_output(out_dir, list(plan.pairs))
    _size_mismatches(plan, task)
    return plan


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


def _write_pairs(plan: PairPlan, stage: Path, task: Task | None) -> dict[str, int]:
    total, done = sum(plan.counts.values()), 0
    tick(task, 0, total, "pairing")
    for split, matched in plan.pairs.items():
        dest = stage / split
        dest.mkdir(parents=True, exist_ok=True)
        for stem, (path_a, path_b) in matched.items():
            img_a, img_b = load_image(path_a, 3), load_image(path_b, 3)
            if img_a.size != img_b.size:  # the plan allowed it: resize is on
                img_b = img_b.resize(img_a.size, Image.BICUBIC)
            side_by_side(img_a, img_b).save(dest / f"{stem}.png")
            done += 1
            tick(task, done, total)
    return plan.counts


def pair_folders(
    a_dir: str | Path,
    b_dir: str | Path,
    out_dir: str | Path,
    resize: bool = False,
    task: Task | None = None,
    plan: PairPlan | None = None,
) -> dict[str, int]:
    """Write ``out_dir/<name>.png`` = A|B for every name present in both folders.

    If A and B both hold train/val/test subfolders, each is paired into the same subfolder
    of ``out_dir`` (the pix2pix layout directly); otherwise the images directly inside are
    paired into ``out_dir`` and can then be split with ``split_dataset``. Returns counts.
    All or nothing: the images appear in ``out_dir`` only once every pair is written, and
    a failure removes the folders this call created. ``plan``: from :func:`plan_pair`.
    """
    return carry_out_pair(plan or plan_pair(a_dir, b_dir, out_dir, resize, task), task)


def carry_out_pair(plan: PairPlan, task: Task | None = None) -> dict[str, int]:
    """Write what ``plan`` says, staged, all or nothing (see :func:`pair_folders`)."""
    with _removed_if_failed(plan.out_dir):
        output_dir(plan.out_dir, "output folder")
        with _staged(plan.out_dir) as stage:
            return _write_pairs(plan, stage, task)


@dataclass
class SplitPlan:
    """What ``split_dataset`` will copy where, and what the user should know first."""

    src: Path
    out_dir: Path
    files: dict[str, list[Path]]
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {split: len(paths) for split, paths in self.files.items()}

    def describe(self) -> list[str]:
        names = {s: sorted(p.name for p in paths) for s, paths in self.files.items()}
        return _describe(self.out_dir, names, "would copy")


def _probed(paths: list[Path], task: Task | None) -> tuple[list[tuple[int, int]], list[str]]:
    """Decode every file named as an image: its size, or why it is no image."""
    sizes, broken = [], []
    for i, path in enumerate(paths):
        try:
            sizes.append(probe_image(path))
        except ImageReadError as exc:
            broken.append(f"{path.name} ({exc.__cause__ or exc})")
        if (i + 1) % 64 == 0 or i + 1 == len(paths):
            tick(task, i + 1, len(paths), "checking images")
    return sizes, broken


def _split_warnings(src: Path, paths: list[Path], sizes: list[tuple[int, int]]) -> list[str]:
    warnings = []
    odd = [(p, s) for p, s in zip(paths, sizes, strict=True) if s[0] != 2 * s[1]]
    if odd:
        (first, (w, h)) = odd[0]
        warnings.append(
            f"warning: {len(odd)} of {len(paths)} images in {src} are not twice as wide as tall "
            f"(e.g. {first.name} is {w}x{h}); training cuts each image into A|B halves, so "
            f"join separate A and B folders with `nectargan data pair` first"
        )
    others = other_files(src)
    if others:
        warnings.append(
            f"note: {len(others)} file(s) that are not images stay behind: {_names(others)}"
        )
    return warnings


def plan_split(
    src: str | Path,
    out_dir: str | Path,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    task: Task | None = None,
) -> SplitPlan:
    """Decode every image of ``src``, draw the split and check the output; write nothing."""
    src, out_dir = Path(src), Path(out_dir)
    _require_dir(src, "source folder")
    if src.resolve() == out_dir.resolve():
        raise DataUserError(f"output folder '{out_dir}' must differ from the source folder")
    check_ratios(ratios)
    paths = list_images(src)
    if not paths:
        raise MissingDataError(f"no image files in '{src}'")
    _check_output(out_dir, SPLITS)
    sizes, broken = _probed(paths, task)
    if broken:
        raise DataUserError(
            f"{len(broken)} file(s) in '{src}' are named as images but do not decode: "
            f"{_names(broken)}; fix or move them out"
        )
    warnings = _split_warnings(src, paths, sizes)
    random.Random(seed).shuffle(paths)
    files, start = {}, 0
    for split, count in zip(SPLITS, split_counts(len(paths), ratios), strict=True):
        files[split] = paths[start : start + count]
        start += count
    return SplitPlan(src, out_dir, files, warnings)


def split_dataset(
    src: str | Path,
    out_dir: str | Path,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    task: Task | None = None,
    plan: SplitPlan | None = None,
) -> dict[str, int]:
    """Copy the images in ``src`` into ``out_dir/{train,val,test}/`` by ratio.

    The shuffle depends only on ``seed`` and the sorted file names, so reruns are identical.
    Splits with zero images are still created (empty) so the layout is always complete.
    All or nothing, as for :func:`pair_folders`. ``plan``: from :func:`plan_split`.
    """
    return carry_out_split(plan or plan_split(src, out_dir, ratios, seed, task), task)


def carry_out_split(plan: SplitPlan, task: Task | None = None) -> dict[str, int]:
    """Copy what ``plan`` says, staged, all or nothing (see :func:`split_dataset`)."""
    total, done = sum(plan.counts.values()), 0
    with _removed_if_failed(plan.out_dir):
        output_dir(plan.out_dir, "output folder")
        with _staged(plan.out_dir) as stage:
            tick(task, 0, total, "copying")
            for split, paths in plan.files.items():
                (stage / split).mkdir()
                for path in paths:
                    shutil.copy2(path, stage / split / path.name)
                    done += 1
                    tick(task, done, total)
        for split in SPLITS:
            (plan.out_dir / split).mkdir(exist_ok=True)
    return plan.counts
