"""The pair browser's backend: list a split in pages, sort by a measure, thumbnails, exclude.

"Exclude" moves a pair to ``<root>/excluded/<split>/`` and "restore" moves it back
under the same name: nothing is renamed or deleted in place, so every decision can
be undone with a file manager too. Names come from a web page, so each is checked
to be a plain file name directly in its folder. Thumbnails are made on first
request and cached beside the measures. Torch-free.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from nectargan.dataset.io import ImageReadError, has_image_name
from nectargan.dataset.measures import (
    CACHE_DIR,
    MEASURES,
    FileKey,
    cache_path,
    check_split,
    is_fresh,
    load_cache,
    scan_folder,
)
from nectargan.errors import DataExistsError, DataUserError, MissingDataError

EXCLUDED = "excluded"
MAX_PAGE = 500
THUMB_WIDTH = 192  # px; an A|B pair is drawn 192x96
SORTS = ("name", *MEASURES)


@dataclass(frozen=True)
class Page:
    """One page of a split's pairs, in the order asked for."""

    total: int
    offset: int
    items: list[dict]
    measured: int  # how many of the split's pairs have cached measures

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "offset": self.offset,
            "items": self.items,
            "measured": self.measured,
        }


def check_name(name: str) -> str:
    """A plain image file name: no folder part, no ``..``, not hidden."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name.startswith(".")
    ):
        raise DataUserError(f"pair name {name!r} is not a plain file name (no '/', '..' or '.x')")
    if not has_image_name(Path(name)):
        raise DataUserError(f"pair name {name!r} is not an image file name")
    return name


def split_folder(root: str | Path, split: str, excluded: bool = False) -> Path:
    """``root/split`` or ``root/excluded/split``."""
    root = Path(root)
    check_split(split)
    return root / EXCLUDED / split if excluded else root / split


def _sort_key(sort: str, entries: dict[str, dict]):
    if sort == "name":
        return lambda k: (0, k.name)
    if sort == "file_size":
        return lambda k: (0, k.size, k.name)

    def key(k: FileKey):
        m = entries.get(k.name, {}).get("m")
        return (0, m[sort], k.name) if m else (1, 0.0, k.name)  # unmeasured last

    return key


def list_pairs(
    root: str | Path,
    split: str,
    offset: int = 0,
    limit: int = 100,
    sort: str = "name",
    descending: bool = False,
    excluded: bool = False,
) -> Page:
    """A page of ``limit`` pairs from ``offset``, sorted by name, file size or a cached measure.

    Only one scandir and the measures cache are read, so a 10,000-pair split pages
    in well under a second; pairs not measured yet sort last either way.
    """
    if sort not in SORTS:
        raise DataUserError(f"sort {sort!r} is not one of {', '.join(SORTS)}")
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise DataUserError(f"offset {offset} / limit {limit}: expected >= 0 and 1..{MAX_PAGE}")
    folder = split_folder(root, split, excluded)
    keys = scan_folder(folder) if folder.is_dir() else []
    entries = {} if excluded else load_cache(cache_path(Path(root), split))
    fresh = {k.name: entries[k.name] for k in keys if is_fresh(entries.get(k.name), k)}
    ordered = sorted(keys, key=_sort_key(sort, fresh))
    if descending:  # reverse the measured ones only: unmeasured stay last
        done = [k for k in ordered if sort in ("name", "file_size") or "m" in fresh.get(k.name, {})]
        ordered = done[::-1] + ordered[len(done) :]
    items = [_item(k, fresh.get(k.name)) for k in ordered[offset : offset + limit]]
    return Page(len(keys), offset, items, sum("m" in e for e in fresh.values()))


def _item(key: FileKey, entry: dict | None) -> dict:
    item: dict = {"name": key.name, "file_size": key.size}
    if entry:
        item["measures"] = entry.get("m")
        if "error" in entry:
            item["error"] = entry["error"]
    return item


def _move(src: Path, dest: Path) -> Path:
    if not src.is_file():
        raise MissingDataError(f"'{src}' is not a file here")
    if dest.exists():
        raise DataExistsError(f"'{dest}' already exists; move or rename it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dest)
    return dest


def exclude_pair(root: str | Path, split: str, name: str) -> Path:
    """Move ``root/split/name`` to ``root/excluded/split/name``; returns the new path."""
    check_name(name)
    return _move(split_folder(root, split) / name, split_folder(root, split, True) / name)


def restore_pair(root: str | Path, split: str, name: str) -> Path:
    """Move an excluded pair back to ``root/split/name``; returns its path."""
    check_name(name)
    return _move(split_folder(root, split, True) / name, split_folder(root, split) / name)


def thumbnail(root: str | Path, split: str, name: str, excluded: bool = False) -> bytes:
    """JPEG bytes of a small copy of one pair, made on first request and cached on disk.

    The cache file's name carries the source's size and mtime, so an edited image
    gets a new thumbnail; a read-only dataset gets one made each time.
    """
    src = split_folder(root, split, excluded) / check_name(name)
    if not src.is_file():
        raise MissingDataError(f"'{src}' is not a file here")
    st = src.stat()
    where = f"{EXCLUDED}-{split}" if excluded else split
    cached = Path(root) / CACHE_DIR / "thumbs" / where / f"{name}.{st.st_size}-{st.st_mtime_ns}.jpg"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    data = _make_thumbnail(src)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only dataset: serve it uncached
    return data


def _make_thumbnail(src: Path) -> bytes:
    try:
        with Image.open(src) as img:
            img.draft("RGB", (THUMB_WIDTH, THUMB_WIDTH))
            small = img.convert("RGB")
    except Exception as exc:  # PIL raises many types for broken files
        raise ImageReadError(f"cannot read image file '{src}': {exc}") from exc
    small.thumbnail((THUMB_WIDTH, THUMB_WIDTH), Image.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=85)
    return buf.getvalue()
