"""A small progress bar: iterations/s, ETA and a free-form status (e.g. current losses).

The first ``warmup`` iterations (data loader workers starting, the first
forward pass allocating) are far slower than the rest; an ETA from them said
13m37s for a run that took 2m29s. The rate is measured after them, and the ETA
reads ``?`` until they are done.

On a terminal it redraws one line in place, at most every ``min_interval``
seconds; into a pipe or file it prints a plain line every ``log_interval``
seconds instead, so logs stay readable and small.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from nectargan.utils.durations import format_duration

WARMUP_STEPS = 5
__all__ = ["ProgressBar", "format_duration", "format_values"]


def format_values(values: Mapping[str, float], digits: int = 3) -> str:
    return " ".join(f"{name} {value:.{digits}g}" for name, value in values.items())


class ProgressBar:
    """``update()`` once per iteration; ``write()`` prints a line above the bar."""

    def __init__(
        self,
        total: int,
        desc: str = "",
        stream: TextIO | None = None,
        width: int = 24,
        min_interval: float = 0.1,
        log_interval: float = 10.0,
        warmup: int = WARMUP_STEPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total < 0:
            raise ValueError(f"progress total must be >= 0, got {total}")
        self.total, self.desc, self.width = total, desc, width
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = min_interval if self.interactive else log_interval
        self.n = 0
        self.status: str | Mapping[str, float] = ""
        self.clock = clock
        self.started = clock()
        self.warmup = max(0, min(warmup, total - 1))
        self._warm_at: tuple[int, float] | None = (0, self.started) if self.warmup == 0 else None
        self._last_draw = -float("inf")
        self._drawn = False
        self._closed = False
        self._last_n_drawn: int | None = None

    @property
    def rate(self) -> float:
        """Iterations per second since the warm-up (since the start while in it)."""
        n0, t0 = self._warm_at or (0, self.started)
        elapsed = self.clock() - t0
        return (self.n - n0) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float:
        """Seconds left; NaN (shown ``?``) during the warm-up, whose pace says nothing."""
        rate = self.rate
        if self._warm_at is None or rate <= 0:
            return float("nan")
        return (self.total - self.n) / rate

    def render(self) -> str:
        frac = min(1.0, self.n / self.total) if self.total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        parts = [
            f"{self.desc} " if self.desc else "",
            f"[{bar}] {self.n}/{self.total} ",
            f"{self.rate:.2f} it/s ETA {format_duration(self.eta())}",
        ]
        status = self.status if isinstance(self.status, str) else format_values(self.status)
        if status:
            parts.append(f" | {status}")
        return "".join(parts)

    def update(
        self, n: int = 1, status: str | Mapping[str, float] | None = None, desc: str | None = None
    ) -> None:
        self.n += n
        if self._warm_at is None and self.n >= self.warmup:
            self._warm_at = (self.n, self.clock())
        if status is not None:
            self.status = status  # formatted only when drawn
        if desc is not None:
            self.desc = desc
        now = self.clock()
        if now - self._last_draw >= self.interval or self.n >= self.total:
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._last_draw = now
        line = self.render()
        if self.interactive:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._drawn = True
        self._last_n_drawn = self.n

    def write(self, text: str) -> None:
        """Print ``text`` on its own line without garbling the bar."""
        if self.interactive and self._drawn:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        if self.interactive and self._drawn and not self._closed:
            self.stream.write(self.render())
        self.stream.flush()

    def close(self) -> None:
        """Final redraw and newline; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.interactive:
            self.stream.write("\r\x1b[2K" + self.render() + "\n")
        elif self.n != self._last_n_drawn:
            self.stream.write(self.render() + "\n")
        self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
