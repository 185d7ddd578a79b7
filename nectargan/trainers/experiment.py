"""Experiment directories: ``<output>/<name>_v<N>``, one per run, never reused by accident."""

from __future__ import annotations

import re
from pathlib import Path

from nectargan.config.schema import EXPERIMENT_NAME as _NAME_OK
from nectargan.config.schema import NAME_RULE
from nectargan.errors import ConfigUserError, UserFileError


def check_experiment_name(name: str) -> str:
    """Names become directory names: refuse separators, empties and hidden names."""
    if not isinstance(name, str) or not _NAME_OK.match(name):
        raise ConfigUserError(f"common.experiment_name: {NAME_RULE}, got {name!r}")
    return name


def existing_versions(output_dir: Path, name: str) -> list[int]:
    """Versions N of ``<name>_v<N>`` directories, matched exactly.

    An exact pattern (not a substring test) keeps ``pix2pix_v2`` from counting
    ``pix2pix_big_v7``, and numeric sorting puts v10 after v9.
    """
    pattern = re.compile(rf"^{re.escape(name)}_v(\d+)$")
    if not output_dir.is_dir():
        return []
    versions = []
    for child in output_dir.iterdir():
        match = pattern.match(child.name)
        if match and child.is_dir():
            versions.append(int(match.group(1)))
    return sorted(versions)


def create_experiment_dir(output_dir: str | Path, name: str) -> Path:
    """Create and return the next free ``<output_dir>/<name>_v<N>`` (N starts at 1).

    ``mkdir(exist_ok=False)`` claims the name atomically, so two runs starting
    at once get different versions instead of sharing a directory.
    """
    check_experiment_name(name)
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserFileError(
            f"common.output_directory: cannot create {str(output_dir)!r}: {exc.strerror}"
        ) from exc
    if not output_dir.is_dir():
        raise UserFileError(f"common.output_directory: {str(output_dir)!r} is not a directory")
    version = (existing_versions(output_dir, name) or [0])[-1] + 1
    while True:
        path = output_dir / f"{name}_v{version}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            version += 1
