"""Modules named in a registry tuple (CLI commands, Toolbox pages), loaded if present."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from types import ModuleType


def present_modules(names: Iterable[str]) -> Iterator[ModuleType]:
    """Import each module in turn; one missing from this checkout (a feature not landed
    yet) is skipped, while a module that fails inside (a missing dependency) still raises."""
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
