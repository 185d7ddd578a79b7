"""Checks on the output paths users name, made before any work is done.

``mkdir`` and ``open`` on a path that runs through a file fail with
``FileExistsError`` or ``NotADirectoryError`` naming whichever part broke
(or one of our temporary names), which reads like a bug. These checks find
the part in the way first and say what was expected, as one
:class:`~nectargan.errors.UserFileError`.
"""

from __future__ import annotations

from pathlib import Path

from nectargan.errors import UserFileError, user_files


def file_in_the_way(path: Path) -> Path | None:
    """``path`` or its nearest existing ancestor, when that is not a folder; else ``None``."""
    for part in (path, *path.parents):
        if part.exists():
            return None if part.is_dir() else part
    return None


def _under_a_file(path: Path, what: str) -> None:
    blocker = file_in_the_way(path.parent)
    if blocker is not None:
        raise UserFileError(
            f"{what} '{path}' is inside '{blocker}', which is a file, not a folder; "
            "choose another path"
        )


def check_output_dir(path: str | Path, what: str) -> Path:
    """Refuse an output folder ``path`` that is a file or lies under one; creates nothing.

    For dry runs, which must say what is wrong without leaving a folder behind.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserFileError(f"{what} '{path}' is a file; expected a folder (new or existing)")
    _under_a_file(path, what)
    return path


def output_dir(path: str | Path, what: str) -> Path:
    """Create the output folder ``path`` (or accept an existing one); refuse a file there."""
    path = check_output_dir(path, what)
    with user_files(what):
        path.mkdir(parents=True, exist_ok=True)
    return path


def output_file(path: str | Path, what: str, expected: str = "a file name") -> Path:
    """Check that the output file ``path`` can be created: not a folder, not under a file.

    Creates its parent folders. ``expected`` names the file wanted, e.g. ``"a .png file"``.
    """
    path = Path(path)
    if path.is_dir():
        raise UserFileError(f"{what} '{path}' is a folder; expected {expected}")
    _under_a_file(path, what)
    with user_files(what):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path
