"""The optional ONNX dependencies, imported on first use with a message naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from nectargan.errors import UserError

EXTRA = "export"
INSTALL_HINT = f"pip install 'nectargan[{EXTRA}]'"


class MissingExtraError(UserError, ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def require(*modules: str, purpose: str = "ONNX export") -> list[ModuleType]:
    """Import ``modules`` or raise one error listing every missing one and the install line."""
    found, missing = [], []
    for name in modules:
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"{purpose} needs {', '.join(missing)}, from the optional '{EXTRA}' extra: "
            f"{INSTALL_HINT}"
        )
    return found
