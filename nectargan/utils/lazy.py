"""A package's names loaded on first use, so its torch-free modules import without torch.

``nectargan.dataset``, ``nectargan.losses`` and ``nectargan.scheduling`` export
names from modules that import torch, and also hold modules that must not (the
CLI's ``--help``, the loss-log reader, the schedule the config schema checks).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where`` maps a name to its submodule."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        namespace[name] = value  # later lookups skip this function
        return value

    return __getattr__
