"""One loss curve as it is shown: bounded, downsampled as the run grows, pre-encoded.

Long-run policy (documented in docs/visualizer.md). Visdom's server deep-copies,
diffs and re-serialises the whole pane on every append, so the cost of a
request grows with the plot. The visualizer therefore keeps the plot itself
bounded and sends each window whole (one ``/events`` replace per cycle):

* Up to ``max_points`` points a series is exact: every (x, y) as given.
* When one more point arrives, neighbouring points are merged in pairs and the
  bucket width doubles: each shown point is then the mean x and mean y of
  ``width`` consecutive raw points (``width`` = 2, 4, 8, ...). The newest,
  still-filling bucket is shown as the mean of what it holds so far.
* A series therefore never shows more than ``max_points`` points; at 100k raw
  points and the default 5000 that is a bucket of 32 iterations.

NaN/Inf losses are gaps: they are counted, never averaged in, and a bucket
holding only gaps is sent as ``null`` (Plotly draws a break), never as the
invalid JSON tokens ``NaN``/``Infinity``.

Encoding floats to JSON is what costs on the client, so every frozen point is
encoded exactly once (``repr`` round-trips the exact float) and a send joins
ready-made text; only a halving re-encodes.
"""

from __future__ import annotations

import math
from array import array

_BLOCK = 512  # encoded values joined into one string per block, to keep memory and joins small


class JsonColumn:
    """A growing JSON number array kept as text: append encoded values, join on demand."""

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._tail: list[str] = []

    def append(self, text: str) -> None:
        self._tail.append(text)
        if len(self._tail) == _BLOCK:
            self._blocks.append(",".join(self._tail))
            self._tail = []

    def clear(self) -> None:
        self._blocks, self._tail = [], []

    def join(self, last: str | None = None) -> str:
        """The column's items, comma-separated, optionally followed by one more item."""
        parts = self._blocks + ([",".join(self._tail)] if self._tail else [])
        if last is not None:
            parts.append(last)
        return ",".join(parts)


def encode(value: float | None) -> str:
    """Exact JSON text for a float; ``None`` (a gap) becomes ``null``."""
    return "null" if value is None else repr(value)


class Series:
    """A bounded, downsampled loss curve; see the module docstring for the policy."""

    def __init__(self, max_points: int) -> None:
        if max_points < 2:
            raise ValueError(f"max_points must be at least 2, got {max_points}")
        self.max_points = max_points - max_points % 2  # pairs merge exactly only when even
        self.width = 1  # raw points per frozen bucket
        self.raw_count = 0
        self.gaps = 0
        # Frozen buckets, each exactly `width` raw points: sums of x, of finite y, count of finite y.
        self._sx = array("d")
        self._sy = array("d")
        self._ny = array("d")
        self._xs = JsonColumn()
        self._ys = JsonColumn()
        # The open bucket, still filling.
        self._cn = 0
        self._cx = 0.0
        self._cy = 0.0
        self._cny = 0

    def __len__(self) -> int:
        """Points shown (frozen buckets plus the open one)."""
        return len(self._sx) + (1 if self._cn else 0)

    def add(self, x: float, y: float) -> None:
        """Fold one raw point in. ``x`` is finite; a non-finite ``y`` is a gap."""
        if self._cn == self.width:
            self._freeze()
        self.raw_count += 1
        self._cn += 1
        self._cx += x
        if math.isfinite(y):
            self._cy += y
            self._cny += 1
        else:
            self.gaps += 1

    def x_json(self) -> str:
        return self._xs.join(encode(self._cx / self._cn) if self._cn else None)

    def y_json(self) -> str:
        return self._ys.join(encode(self._open_mean()) if self._cn else None)

    def points(self) -> tuple[list[float], list[float | None]]:
        """What is shown, decoded (for tests and reports)."""
        xs = [sx / self.width for sx in self._sx]
        ys = [_mean(sy, ny) for sy, ny in zip(self._sy, self._ny, strict=True)]
        if self._cn:
            xs.append(self._cx / self._cn)
            ys.append(self._open_mean())
        return xs, ys

    # -- internals ----------------------------------------------------------

    def _open_mean(self) -> float | None:
        return _mean(self._cy, self._cny)

    def _freeze(self) -> None:
        """Move the full open bucket to the frozen ones, halving first if that would overflow."""
        if len(self._sx) + 1 >= self.max_points:
            self._halve()
            if self._cn < self.width:
                return  # the open bucket is now the first half of a wider one
        self._sx.append(self._cx)
        self._sy.append(self._cy)
        self._ny.append(self._cny)
        self._xs.append(encode(self._cx / self.width))
        self._ys.append(encode(_mean(self._cy, self._cny)))
        self._cn, self._cx, self._cy, self._cny = 0, 0.0, 0.0, 0

    def _halve(self) -> None:
        """Merge frozen buckets pairwise and double the width; re-encode everything once.

        The open bucket (full at the old width) stays open: it is half of a new-width bucket.
        """
        n = len(self._sx) - len(self._sx) % 2
        sx, sy, ny = array("d"), array("d"), array("d")
        for i in range(0, n, 2):
            sx.append(self._sx[i] + self._sx[i + 1])
            sy.append(self._sy[i] + self._sy[i + 1])
            ny.append(self._ny[i] + self._ny[i + 1])
        leftover = len(self._sx) - n
        self.width *= 2
        if leftover:  # an odd count: the last frozen bucket joins the open one
            self._cx += self._sx[-1]
            self._cy += self._sy[-1]
            self._cny += int(self._ny[-1])
            self._cn += self.width // 2
        self._sx, self._sy, self._ny = sx, sy, ny
        self._xs.clear()
        self._ys.clear()
        for i in range(len(sx)):
            self._xs.append(encode(sx[i] / self.width))
            self._ys.append(encode(_mean(sy[i], ny[i])))


def _mean(total: float, count: float) -> float | None:
    return total / count if count else None
