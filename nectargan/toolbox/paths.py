"""Paths that come from a browser: resolved, then confined to the Toolbox's roots.

``resolve()`` follows every symlink and removes every ``..``, and
``is_relative_to`` compares whole path components, so ``/data2`` is not inside
``/data`` (a string-prefix test would say it is). Nothing here ever opens a
path the browser named directly: runs are named by output root and folder
name, images by run and relative name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nectargan.errors import UserError


class PathRefused(UserError):
    """A path outside every root, or not a name at all; the message names it."""


def resolve_roots(roots: Sequence[str | Path]) -> list[Path]:
    """Each root as an absolute, symlink-free path; a missing root is an error."""
    out = []
    for root in roots:
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise PathRefused(f"--root {str(root)!r}: expected an existing folder")
        if path not in out:
            out.append(path)
    return out


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether the resolved ``path`` lies in (or is) one of ``roots``."""
    return any(path == root or path.is_relative_to(root) for root in roots)


def confine(raw: str | Path, roots: Sequence[Path], base: Path | None = None) -> Path:
    """``raw`` resolved (relative to ``base`` or the first root) and proven inside a root."""
    text = str(raw)
    if not text.strip() or "\x00" in text:
        raise PathRefused(f"path {text!r}: expected a folder or file name")
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = (base or roots[0]) / candidate
    resolved = candidate.resolve()
    if not inside(resolved, roots):
        allowed = ", ".join(str(r) for r in roots)
        raise PathRefused(f"path {text!r} is outside the Toolbox's roots ({allowed})")
    return resolved


def child_name(name: str, what: str = "name") -> str:
    """One path component the browser chose (a run folder, a file): no separators, no dots."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise PathRefused(f"{what} {name!r}: expected a single file or folder name")
    return name


def file_in(folder: Path, relative: str, roots: Sequence[Path]) -> Path:
    """``folder/relative`` for a file the browser asked for by relative name, confined twice:
    inside ``folder`` and inside a root (a symlink in the folder may point anywhere)."""
    if not relative or relative.startswith("/") or "\x00" in relative:
        raise PathRefused(f"file {relative!r}: expected a name relative to the run's folder")
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder.resolve()) or not inside(target, roots):
        raise PathRefused(f"file {relative!r} is outside the run's folder")
    return target
