"""JSON files of one small row per epoch that grow by appending, not by rewriting.

Runs last for days, and a file rewritten whole every epoch costs O(epochs)
per epoch, O(epochs^2) over the run. These files stay strict JSON that any
reader loads, laid out so a new row is written in place over the closing
lines::

    {"format":"...","rows":[
    {"epoch":1,...},
    {"epoch":2,...}
    ],"best":{...}}

The head is the first line, each row one line, the tail (keys after the rows)
the last line. :func:`append_row` overwrites the tail with ``,<row>`` and a
new tail: the bytes written are one row and the tail, whatever the file's
length. It returns False for a file in any other layout (an older version's,
or a missing one), and the caller rewrites it whole once with
:func:`write_rows` (atomic). An append is not atomic: a crash in the middle
can leave a torn last line, so :func:`load_rows` falls back to the rows of
the lines that still parse.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nectargan.utils.atomic import atomic_write_text

ROWS_END = b"\n]"  # only ever the end of the rows: no row, head or tail holds a newline
TAIL_WINDOW = 4096  # what an append reads: the tail (one short line) lies in it


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


def _tail_text(tail: Mapping[str, Any]) -> str:
    """``]`` plus the keys after the rows and the closing brace, as one line."""
    return "]" + ("," + _dumps(dict(tail))[1:] if tail else "}") + "\n"


def render(
    head: Mapping[str, Any], key: str, rows: Sequence[Mapping[str, Any]], tail: Mapping[str, Any]
) -> str:
    """The whole file's text in the appendable layout."""
    first = _dumps({**head, key: []})[: -len("[]}")] + "["
    body = ",".join("\n" + _dumps(dict(r)) for r in rows)
    return first + body + "\n" + _tail_text(tail)


def write_rows(
    path: Path,
    head: Mapping[str, Any],
    key: str,
    rows: Sequence[Mapping[str, Any]],
    tail: Mapping[str, Any] | None = None,
) -> Path:
    """Rewrite the file whole, atomically (a new run, a resume's rewind, a foreign layout)."""
    return atomic_write_text(path, render(head, key, rows, tail or {}))


def append_row(path: Path, row: Mapping[str, Any], tail: Mapping[str, Any] | None = None) -> bool:
    """Add ``row`` (and replace the tail) in place; False, untouched, if not in our layout."""
    try:
        with open(path, "r+b") as handle:
            end = _rows_end(handle)
            if end is None:
                return False
            offset, has_rows = end
            handle.seek(offset)
            text = (
                ("," if has_rows else "") + "\n" + _dumps(dict(row)) + "\n" + _tail_text(tail or {})
            )
            handle.write(text.encode("utf-8"))
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
    except FileNotFoundError:
        return False
    return True


def _rows_end(handle: Any) -> tuple[int, bool] | None:
    """Offset of the rows' closing ``\\n]`` and whether any row precedes it; None if absent."""
    size = handle.seek(0, os.SEEK_END)
    start = max(0, size - TAIL_WINDOW)
    handle.seek(start)
    chunk = handle.read()
    at = chunk.rfind(ROWS_END)
    if at <= 0 or chunk[at - 1 : at] not in (b"}", b"["):
        return None
    if not chunk.endswith(b"}\n") or b"\n" in chunk[at + len(ROWS_END) : -1]:
        return None
    return start + at, chunk[at - 1 : at] == b"}"


def load_rows(text: str, key: str) -> dict[str, Any]:
    """The parsed file; for a torn one, ``{key: rows}`` from the lines that still parse."""
    try:
        data = json.loads(text)
    except ValueError:
        return {key: _salvage(text)}
    return data if isinstance(data, dict) else {}


def _salvage(text: str) -> list[dict[str, Any]]:
    """Each line's leading JSON object (a torn write may leave bytes after it)."""
    decoder = json.JSONDecoder()
    rows = []
    for line in text.splitlines()[1:]:
        try:
            row, _ = decoder.raw_decode(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
