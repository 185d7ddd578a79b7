"""The one number check: Python's ``bool`` is an ``int``, and ``True`` is never a count or a weight.

``isinstance(True, int)`` holds, so every "is this an integer / a number" check in
the package must exclude bool; these two predicates are that check, written once.
"""

from __future__ import annotations

import math
import numbers


def is_int(value: object) -> bool:
    """A Python ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object, *, finite: bool = False) -> bool:
    """A real number (int, float, NumPy scalar) and not a ``bool``; ``finite``: no NaN or inf."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return not finite or math.isfinite(value)


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum``, else a ValueError naming ``name`` and the value."""
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value  # type: ignore[return-value]


def check_positive_ints(**values: object) -> None:
    """A ValueError naming the first of ``values`` that is not an int >= 1 (sizes, counts)."""
    for name, value in values.items():
        if not is_int(value) or value < 1:  # type: ignore[operator]
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
