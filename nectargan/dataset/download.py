"""``nectargan data download NAME``: fetch a standard pix2pix dataset, check it, say how to use it.

The archives are the ones the pix2pix reference download script uses:
``BASE/NAME.tar.gz`` holding ``NAME/{train,val,test}/``. The base URL can be replaced
(mirrors, offline copies, tests) with ``--url`` or ``NECTARGAN_DATASETS_URL``.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nectargan.dataset.archive import extract_dataset
from nectargan.dataset.layout import LayoutError, check_layout
from nectargan.dataset.task import Task, tick
from nectargan.dataset.transfer import (
    ByteProgress,
    DownloadError,
    TransferOptions,
    download_to_part,
)
from nectargan.errors import DataUserError

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
BASE_URL_ENV = "NECTARGAN_DATASETS_URL"
DATASETS = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")


@dataclass(frozen=True)
class DownloadResult:
    folder: Path
    counts: dict[str, int]
    downloaded: bool  # False: it was already there


def base_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def check_name(name: str) -> str:
    if name not in DATASETS:
        raise DataUserError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}")
    return name


def existing_dataset(folder: Path) -> dict[str, int] | None:
    """Counts if ``folder`` already holds a dataset that passes the layout check."""
    if not folder.is_dir():
        return None
    try:
        return check_layout(folder)
    except LayoutError:
        return None


def _checked(folder: Path) -> dict[str, int]:
    try:
        return check_layout(folder)
    except LayoutError as exc:
        raise DownloadError(f"the archive does not hold a usable dataset: {exc}") from None


def download_dataset(
    name: str,
    root: str | Path = "datasets",
    url: str | None = None,
    force: bool = False,
    options: TransferOptions | None = None,
    stream: TextIO | None = None,
    task: Task | None = None,
) -> DownloadResult:
    """Download ``name`` into ``root/name`` (resuming a partial download), unpack, check.

    ``task`` reports bytes (then the unpacking) and cancels between chunks: a
    cancelled download keeps its part file, so the next call resumes it.
    """
    check_name(name)
    stream = stream if stream is not None else sys.stderr
    root = Path(root)
    folder = root / name
    if folder.exists() and not force:
        counts = existing_dataset(folder)
        if counts is not None:
            return DownloadResult(folder, counts, downloaded=False)
        raise DataUserError(
            f"'{folder}' exists but is not a complete dataset; move it away or pass --force"
        )
    root.mkdir(parents=True, exist_ok=True)
    part = root / f".{name}.tar.gz.part"
    if force:
        part.unlink(missing_ok=True)
    source = f"{base_url(url)}/{name}.tar.gz"
    print(f"downloading {source}", file=stream)
    download_to_part(source, part, options, ByteProgress(name, stream, task=task))
    tick(task, 0, None, "unpacking and checking")
    try:
        extract_dataset(part, root, name, check=_checked)
    except DownloadError:
        # A complete transfer of a bad archive: resuming it could never help.
        part.unlink(missing_ok=True)
        raise
    counts = check_layout(folder)
    part.unlink(missing_ok=True)
    return DownloadResult(folder, counts, downloaded=True)


def summary(result: DownloadResult) -> str:
    counts = ", ".join(f"{split} {n}" for split, n in result.counts.items())
    state = "downloaded to" if result.downloaded else "already downloaded in"
    hint = "" if result.downloaded else " (nothing to do; --force downloads it again)"
    return (
        f"{result.folder.name} {state} {result.folder}{hint}\n"
        f"  images: {counts}\n"
        f"  train with: nectargan train --dataroot {shlex.quote(str(result.folder))}"
    )


__all__ = ["DATASETS", "DownloadResult", "download_dataset", "summary"]
