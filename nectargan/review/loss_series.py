"""One loss's records as arrays, joined from the loss log's segments when first used.

A 1M-step log is 4M records per column; the Review page never looks at the epochs
and a replay never at the raw values alone, so a column is concatenated from its
per-segment pieces (views into the column files) only when something reads it.
"""

from __future__ import annotations

import numpy as np

from nectargan.experiment_layout import LOSS_LOG_FIELDS as FIELDS

_EMPTY = {"step": np.int64}  # the other columns are float64


class LossSeries:
    """One loss's records in log order, as float arrays; NaN marks a non-finite (null) value.

    ``epoch``, ``step`` (int64), ``raw`` and ``weight`` read like plain arrays.
    """

    def __init__(self, name: str, tags: list[str], **columns: np.ndarray) -> None:
        unknown = set(columns) - set(FIELDS)
        if unknown:
            raise TypeError(f"LossSeries: unknown column(s) {sorted(unknown)}")
        self.name = name
        self.tags = tags
        self._pieces: dict[str, list[np.ndarray]] = {f: [] for f in FIELDS}
        self._joined: dict[str, np.ndarray] = dict(columns)

    epoch = property(lambda self: self._column("epoch"))
    step = property(lambda self: self._column("step"))
    raw = property(lambda self: self._column("raw"))
    weight = property(lambda self: self._column("weight"))

    @property
    def weighted(self) -> np.ndarray:
        """``raw * weight``: the value the live dashboard graphs (NaN where unknown or infinite)."""
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.raw * self.weight
        out[~np.isfinite(out)] = np.nan
        return out

    def extend(self, columns: list[np.ndarray]) -> None:
        """Append one segment's columns (in :data:`FIELDS` order); nothing is copied yet."""
        for field, values in zip(FIELDS, columns, strict=True):
            if field in self._joined:
                self._pieces[field] = [self._joined.pop(field)]
            self._pieces[field].append(values)

    def _column(self, field: str) -> np.ndarray:
        if field not in self._joined:
            pieces = self._pieces[field]
            dtype = _EMPTY.get(field, np.float64)
            self._joined[field] = np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
            self._pieces[field] = []
        return self._joined[field]

    def __len__(self) -> int:
        if "step" in self._joined:
            return len(self._joined["step"])
        return sum(len(piece) for piece in self._pieces["step"])

    def __repr__(self) -> str:
        return f"LossSeries({self.name!r}, tags={self.tags!r}, records={len(self)})"
