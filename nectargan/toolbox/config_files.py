"""Config files for the New-run page: load one of ours, import an upstream one, save as.

Every path is confined to the Toolbox's roots. Loading never refuses a file
for its values: the form shows them with the schema's messages beside the bad
ones, which is where they get fixed. An upstream file is converted by
``config import``'s own converter, and the keys it could not map are listed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nectargan.config.config import Config, read_json
from nectargan.config.upstream import convert, is_upstream
from nectargan.toolbox.form import FormResult, check_config_dict, form_texts
from nectargan.toolbox.paths import PathRefused, confine
from nectargan.utils.atomic import atomic_write_text

SUFFIX = ".json"


@dataclass
class LoadedConfig:
    """A config file as the form shows it, and what was learned reading it."""

    path: str
    upstream: bool
    form: FormResult
    unmapped: list[str] = field(default_factory=list)  # upstream keys `config import` dropped


def load_config_file(raw: str, roots: Sequence[Path]) -> LoadedConfig:
    """Read ``raw`` (ours, or upstream's converted): its values and problems, field by field."""
    path = confine(raw, roots)
    data = read_json(path)  # a ConfigError when unreadable or not a JSON object
    upstream = is_upstream(data)
    notes: list[str] = []
    if upstream:
        data, notes = convert(data)
    form = check_config_dict(data, source=str(path))
    if not form.valid:
        form.texts = form_texts(data)
    return LoadedConfig(str(path), upstream, form, notes)


def save_target(raw: str, roots: Sequence[Path], overwrite: bool) -> Path:
    """Where "save as" may write: a .json file inside a root, in an existing folder."""
    text = raw.strip()
    if not text.lower().endswith(SUFFIX):
        raise PathRefused(f"save as {raw!r}: expected a file name ending in {SUFFIX}")
    path = confine(text, roots)
    if not path.parent.is_dir():
        raise PathRefused(f"save as {raw!r}: folder '{path.parent}' does not exist")
    if path.is_dir():
        raise PathRefused(f"save as {raw!r}: '{path}' is a folder")
    if path.exists() and not overwrite:
        raise PathRefused(f"save as {raw!r}: '{path}' exists; tick 'overwrite' to replace it")
    return path


def save_config(config: Config, raw: str, roots: Sequence[Path], overwrite: bool = False) -> Path:
    """Write the whole effective config (defaults included), atomically, inside a root."""
    path = save_target(raw, roots, overwrite)
    atomic_write_text(path, json.dumps(config.to_dict(), indent=2) + "\n")
    return path
