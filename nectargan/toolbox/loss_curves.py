"""The Run page's loss curves, kept as arrays and cut to bucket means for the chart.

Why arrays: a 1M-step run's four losses held as Python lists of ints and floats
took ~400 MB and seconds to parse; read through the loss log's column files
(:func:`nectargan.losses.loss_log.read_segment_arrays`, as the Review page
reads them) they are one float64 per record, and steps that count up by one
(the usual case) are kept as their first value only.

NumPy is imported on first use, never at import: the Toolbox starts without it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

CHART_POINTS = 400  # per loss: bucket means, as the dashboard draws long logs


@dataclass
class _Chunk:
    """One segment's records of one loss: ``steps`` None when they are
    ``first_step, first_step + 1, ...`` (not worth 8 bytes a record)."""

    first_step: int
    steps: Any  # int64 array, or None
    values: Any  # float64 array; NaN where the record has no value


class LossCurve:
    """One loss's weighted values in step order (what the dashboard graphs)."""

    def __init__(self, tags: list[str]) -> None:
        self.tags = tags
        self._chunks: list[_Chunk] = []
        self._offsets: list[int] = []  # index of each chunk's first record
        self.records = 0

    def extend(self, steps: Any, values: Any) -> None:
        """Append one segment's steps (int64 array) and weighted values (float64 array)."""
        import numpy as np

        n = len(steps)
        if n == 0:
            return
        first = int(steps[0])
        consecutive = int(steps[-1]) - first == n - 1 and bool(np.all(np.diff(steps) == 1))
        kept = None if consecutive else np.array(steps, dtype=np.int64)
        self._offsets.append(self.records)
        self._chunks.append(_Chunk(first, kept, np.array(values, dtype=np.float64)))
        self.records += n

    def chart(self, points: int = CHART_POINTS) -> dict[str, list]:
        """At most ``points`` (step, mean) pairs: bucket ``b`` holds records
        ``b*n//points`` up to the next, drawn at its middle record's step with the mean of
        its values (None when it has none): the chart the lists drew, to float rounding."""
        n = self.records
        values = self._values()
        if n <= points:
            return {"x": self._steps_at(range(n)), "y": [_number(v) for v in values.tolist()]}
        edges = [b * n // points for b in range(points + 1)]
        middles = [(lo + hi - 1) // 2 for lo, hi in zip(edges, edges[1:], strict=False)]
        return {"x": self._steps_at(middles), "y": _bucket_means(values, edges[:-1])}

    def _values(self) -> Any:
        import numpy as np

        if len(self._chunks) == 1:
            return self._chunks[0].values
        return np.concatenate([c.values for c in self._chunks] or [np.empty(0)])

    def _steps_at(self, indices: Any) -> list[int]:
        """The steps of the records at ``indices`` (ascending), without joining the chunks."""
        out = []
        for index in indices:
            at = bisect.bisect_right(self._offsets, index) - 1
            chunk, within = self._chunks[at], index - self._offsets[at]
            out.append(
                chunk.first_step + within if chunk.steps is None else int(chunk.steps[within])
            )
        return out


def _bucket_means(values: Any, starts: list[int]) -> list[float | None]:
    """The mean of each bucket's present (not NaN) values, None for a bucket with none:
    one ``reduceat`` over the whole array (``starts`` strictly increasing), not a numpy
    call per bucket, which cost the Run page ~25 ms a look at 400 buckets x 4 losses."""
    import numpy as np

    present = ~np.isnan(values)
    sums = np.add.reduceat(np.where(present, values, 0.0), starts)
    counts = np.add.reduceat(present.astype(np.int64), starts)
    return [
        float(s) / c if c else None for s, c in zip(sums.tolist(), counts.tolist(), strict=True)
    ]


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value
