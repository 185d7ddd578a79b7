"""A job's output images as one zip download, written while it is sent.

The archive is streamed (a few chunks in memory, never the whole zip), its
names are the files' own names (no folders, nothing absolute), and only
regular files directly inside the job's folder go in: a name with a slash, a
symlink, or a file that resolves elsewhere is left out.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from starlette.responses import StreamingResponse

CHUNK = 1 << 20


class _Pipe:
    """A write-only, unseekable file for ZipFile; what it holds is taken out as it is sent."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.written = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def files_inside(folder: Path, names: Iterable[str]) -> list[Path]:
    """Those of ``names`` that are regular files directly in ``folder`` (links left out)."""
    base = folder.resolve()
    kept = []
    for name in names:
        path = folder / name
        if "/" in name or name in ("", ".", "..") or path.is_symlink() or not path.is_file():
            continue
        if path.resolve().parent == base:
            kept.append(path)
    return kept


def zip_chunks(files: Iterable[Path]) -> Iterator[bytes]:
    """The zip of ``files`` (each under its own name), chunk by chunk."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_STORED) as archive:
        for path in files:
            info = zipfile.ZipInfo.from_file(path, arcname=path.name)
            with open(path, "rb") as source, archive.open(info, "w", force_zip64=True) as target:
                while block := source.read(CHUNK):
                    target.write(block)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


def zip_response(folder: Path, names: Iterable[str], download_name: str) -> StreamingResponse:
    """Stream the zip of ``names`` in ``folder`` as ``download_name``."""
    files = files_inside(folder, names)
    headers = {"Content-Disposition": f'attachment; filename="{download_name}"'}
    return StreamingResponse(zip_chunks(files), media_type="application/zip", headers=headers)
