"""Nested-mapping helpers shared by the trainer (resume checks) and the review (config diffs).

Torch-free on purpose: ``nectargan report`` and ``replay`` compare configs
without importing the trainers package (which loads torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``; an empty mapping stays one leaf."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out
