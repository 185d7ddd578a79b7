"""Binary column files beside the loss log's JSON segments, so a long log reads in a blink.

Why: a review of a 1M-step run parsed 16M JSON numbers (13 s on 2 cores) to draw
400 points per curve. The same values as float64 columns are one ``read`` and a
``numpy.frombuffer`` each. The JSON segment stays the record (report, replay,
resume and the Run page read it); a column file is a derived copy of what the
tolerant reader makes of one segment, so reading either gives the same arrays.

``loss_log/000001.columns`` is written by the trainer when it closes segment 1
(at the flush, never per step), or by a reader the first time it parses a
segment that has none (runs from before this file existed): next to the segment,
or under :func:`cache_home` when the run's folder cannot be written. It is used
only if it was made from the segment as it is now: it names the segment's size
and mtime (what Python checks before trusting a ``.pyc``) and the CRC-32 of its
own body; anything else (missing, torn, stale, foreign) reads the JSON instead.

Layout: one JSON header line, padded so the body starts at a multiple of 8
bytes, then the body: little-endian float64 columns. A column is described in
the header as ``{"f8": byte offset}``, ``{"range": first}`` (consecutive
integers: the steps) or ``{"const": value}`` (one value throughout: the weight
outside a schedule), so the usual segment costs 16 bytes a record (epoch, raw).
Written with the ``array`` module; NumPy is imported only to read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nectargan.experiment_layout import LOSS_LOG_FIELDS
from nectargan.utils.atomic import atomic_writer

FORMAT = "nectargan.loss_columns"
VERSION = 1
SUFFIX = ".columns"
CACHE_ENV = "NECTARGAN_CACHE_DIR"  # where column files go when a run's folder is read-only
_ALIGN = 8


@dataclass(frozen=True)
class Stamp:
    """What a column file must agree with to stand for its segment: the segment's size, mtime."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns)


GONE = Stamp(-1, -1)  # a segment that could not be looked at: matches no column file


@dataclass
class Columns:
    """One segment's losses as float64 arrays (NaN: a null value) and the reader's problems;
    ``run`` None for a segment with nothing readable."""

    run: int | None
    losses: dict[str, dict[str, Any]]
    problems: list[str]


# -- where ------------------------------------------------------------------------------


def cache_home() -> Path:
    """``$NECTARGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/nectargan``, else ``~/.cache/nectargan``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nectargan"


def beside(segment: Path) -> Path:
    """``loss_log/000001.columns`` for ``loss_log/000001.json``."""
    return segment.with_name(segment.stem + SUFFIX)


def in_cache(segment: Path) -> Path:
    """The column file of a segment whose folder is read-only: keyed by the folder's path."""
    key = hashlib.sha256(str(segment.parent.resolve()).encode()).hexdigest()[:24]
    return cache_home() / "loss_columns" / key / (segment.stem + SUFFIX)


# -- writing ----------------------------------------------------------------------------


def encode(
    stamp: Stamp, run: int, losses: dict[str, dict[str, list]], problems: list[str]
) -> bytes:
    """The column file of a segment the reader made ``losses`` and ``problems`` of."""
    body = bytearray()
    described = {}
    for name, cols in losses.items():
        n = len(cols["step"])
        described[name] = {"n": n, **{f: _encode_column(f, cols[f], body) for f in LOSS_LOG_FIELDS}}
    header = {
        "format": FORMAT,
        "version": VERSION,
        "segment": {"size": stamp.size, "mtime_ns": stamp.mtime_ns},
        "run": run,
        "problems": problems,
        "losses": described,
        "body": len(body),
        "crc32": zlib.crc32(body),
    }
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    padding = -(len(text) + 1) % _ALIGN
    return text + b" " * padding + b"\n" + bytes(body)


def _encode_column(field: str, values: list, body: bytearray) -> dict[str, Any]:
    """Steps that count up by one as a range, a weight that never changes as a constant
    (the usual case for both), anything else as float64 appended to ``body``."""
    n = len(values)
    first = values[0] if n else None
    if field == "step" and type(first) is int and values == list(range(first, first + n)):
        return {"range": first}
    if field == "weight" and n and values.count(first) == n and _plain_constant(first):
        return {"const": first}
    if None in values:
        values = [math.nan if v is None else v for v in values]
    column = array("d", values)
    if sys.byteorder == "big":
        column.byteswap()
    offset = len(body)
    body += column  # the buffer, not a copy of it
    return {"f8": offset}


def _plain_constant(value: Any) -> bool:
    """A value the header can hold exactly: not NaN/inf, and not zero (``-0.0 == 0.0``)."""
    return value is None or (math.isfinite(value) and value != 0)


def store(segment: Path, data: bytes) -> Path | None:
    """Write ``data`` beside ``segment``, else in the cache; None if neither can be written.

    Never raises for a write that fails: a column file is a speed-up, and a full
    disk must not fail the flush that already saved the segment itself.
    """
    for where in (beside, in_cache):
        try:
            target = where(segment)
            with atomic_writer(target, "wb", fsync=False) as handle:  # the CRC catches a torn one
                handle.write(data)
        except (OSError, RuntimeError):  # RuntimeError: no home folder for the cache
            continue
        return target
    return None


# -- reading ----------------------------------------------------------------------------


def load(segment: Path, stamp: Stamp) -> Columns | None:
    """The segment's columns from its column file (beside it, or in the cache) if one is valid."""
    for where in (beside, in_cache):
        try:
            data = where(segment).read_bytes()
        except (OSError, RuntimeError):
            continue
        columns = decode(data, stamp)
        if columns is not None:
            return columns
    return None


def is_current(segment: Path, stamp: Stamp) -> bool:
    """Whether a column file made from the segment as it is now exists (its header only:
    the body's CRC is checked when it is read)."""
    for where in (beside, in_cache):
        try:
            with where(segment).open("rb") as handle:
                header = json.loads(handle.readline(1 << 20))
        except (OSError, RuntimeError, ValueError):
            continue
        if _matches(header, stamp):
            return True
    return False


def decode(data: bytes, stamp: Stamp) -> Columns | None:
    """``data`` as arrays if it is a whole column file made from a segment with ``stamp``."""
    end = data.find(b"\n")
    try:
        header = json.loads(data[:end]) if end > 0 else None
        if not _matches(header, stamp):
            return None
        body = memoryview(data)[end + 1 :]
        if len(body) != header["body"] or zlib.crc32(body) != header["crc32"]:
            return None
        losses = {
            name: _decode_loss(body, described) for name, described in header["losses"].items()
        }
        problems = [str(p) for p in header["problems"]]
        return Columns(int(header["run"]), losses, problems)
    except (ValueError, TypeError, KeyError, AttributeError):  # not ours, or damaged in place
        return None


def _matches(header: Any, stamp: Stamp) -> bool:
    return (
        isinstance(header, dict)
        and header.get("format") == FORMAT
        and header.get("version") == VERSION
        and header.get("segment") == {"size": stamp.size, "mtime_ns": stamp.mtime_ns}
    )


def _decode_loss(body: memoryview, described: dict[str, Any]) -> dict[str, Any]:
    """The four columns (``step`` as int64, as the JSON reader gives it; the rest float64)."""
    import numpy as np  # here, not at import: the trainer and the Toolbox's start need none

    n = int(described["n"])
    out = {}
    for field in LOSS_LOG_FIELDS:
        (kind, value), *extra = described[field].items()
        if extra:
            raise ValueError(f"column {field!r}: one description expected")
        if kind == "f8":
            column = np.frombuffer(body, dtype="<f8", count=n, offset=int(value))
        elif kind == "range":  # exact integers: the same as float64 then int64
            column = np.arange(int(value), int(value) + n, dtype=np.int64)
        elif kind == "const":  # a read-only view of one value: joining it copies it out
            column = np.broadcast_to(np.float64(math.nan if value is None else value), (n,))
        else:
            raise ValueError(f"column {field!r}: unknown kind {kind!r}")
        out[field] = column.astype(np.int64, copy=False) if field == "step" else column
    return out
