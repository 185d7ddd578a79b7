"""Unpack a dataset archive safely: every entry checked first, nothing outside ``root/NAME``.

The whole member list is read and checked before one byte is written, so a bad
entry (absolute path, ``..``, a link pointing out, a device file) refuses the whole
archive, naming the entry. Extraction then goes into a temporary folder beside the
target, with tarfile's ``data`` filter as a second line of defence, and is renamed
into place only once it is complete, so an interrupted or corrupt archive never
leaves a folder that looks like a dataset.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from nectargan.dataset.transfer import DownloadError


class UnsafeArchiveError(DownloadError):
    """An entry would land outside the dataset folder, or is not a plain file or folder."""


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def check_member(member: tarfile.TarInfo, top: str) -> None:
    """Refuse ``member`` unless it is a file, folder or link staying inside ``top/``."""
    name = member.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"archive entry '{name}' is an absolute path")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or ".." in name.split("/"):
        raise UnsafeArchiveError(f"archive entry '{name}' climbs out with '..'")
    if not _inside(norm, top):
        raise UnsafeArchiveError(f"archive entry '{name}' lies outside '{top}/'")
    if member.issym() or member.islnk():
        link = member.linkname
        base = posixpath.dirname(norm) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, link))
        if link.startswith("/") or target == ".." or target.startswith("../"):
            raise UnsafeArchiveError(f"archive entry '{name}' links out of the dataset to '{link}'")
        if not _inside(target, top):
            raise UnsafeArchiveError(f"archive entry '{name}' links outside '{top}/' to '{link}'")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"archive entry '{name}' is a device, fifo or other special file")


def _read_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    try:
        return tar.getmembers()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DownloadError(f"archive '{archive}' is truncated or corrupt ({exc})") from None


def extract_dataset(
    archive: Path, root: Path, name: str, check: Callable[[Path], object] | None = None
) -> Path:
    """Unpack ``archive`` (holding ``name/...``) to ``root/name``; returns that folder.

    ``check(folder)`` runs on the unpacked folder before it is moved into place; if it
    raises, nothing is left behind. An existing ``root/name`` is replaced only at the end.
    """
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.extract-", dir=root))
    try:
        try:
            tar = tarfile.open(archive, "r:*")  # noqa: SIM115 (closed by the with below)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise DownloadError(f"archive '{archive}' cannot be opened ({exc})") from None
        with tar:
            members = _read_members(tar, archive)
            if not members:
                raise DownloadError(f"archive '{archive}' is empty")
            for member in members:
                check_member(member, name)
            try:
                tar.extractall(staging, members=members, filter="data")
            except (tarfile.TarError, EOFError, zlib.error) as exc:
                raise DownloadError(
                    f"archive '{archive}' is truncated or corrupt ({exc})"
                ) from None
        unpacked = staging / name
        if not unpacked.is_dir():
            raise DownloadError(f"archive '{archive}' holds no '{name}/' folder")
        if check is not None:
            check(unpacked)
        final = root / name
        if final.exists():
            old = staging / ".replaced"
            final.rename(old)
        unpacked.rename(final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
