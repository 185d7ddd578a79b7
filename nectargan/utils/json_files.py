"""Reading back the small JSON records a run writes, where a bad file is no error.

A crash can leave a record torn, an older version may have written another
shape, and many records are optional: every such reader wants "the object,
or nothing", never an exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file is missing, unreadable, torn or
    holds something other than an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_json_noting(path: str | Path, problems: list[str], what: str, shown_as: str) -> Any:
    """Parsed JSON, or None with ``<shown_as>: unreadable <what> (<why>), skipped`` added to
    ``problems``: a reader of a whole run names a torn file and goes on with the rest."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, UnicodeDecodeError
        problems.append(f"{shown_as}: unreadable {what} ({why_unreadable(exc)}), skipped")
        return None


def why_unreadable(exc: BaseException) -> str:
    """The reason in a few words: where the JSON breaks, or the OS's message."""
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at char {exc.pos}: {exc.msg}"
    return getattr(exc, "strerror", None) or str(exc)
