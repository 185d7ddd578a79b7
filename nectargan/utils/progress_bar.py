"""A small progress bar: iterations/s, ETA and a free-form status (e.g. current losses).

On a terminal it redraws one line in place, at most every ``min_interval``
seconds; into a pipe or file it prints a plain line every ``log_interval``
seconds instead, so logs stay readable and small.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75`` -> ``'1:15'``, ``3725`` -> ``'1:02:05'``; unknown -> ``'?'``."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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
    ) -> None:
        if total < 0:
            raise ValueError(f"progress total must be >= 0, got {total}")
        self.total, self.desc, self.width = total, desc, width
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = min_interval if self.interactive else log_interval
        self.n = 0
        self.status: str | Mapping[str, float] = ""
        self.started = time.monotonic()
        self._last_draw = -float("inf")
        self._drawn = False
        self._closed = False
        self._last_n_drawn: int | None = None

    @property
    def rate(self) -> float:
        """Average iterations per second since the start."""
        elapsed = time.monotonic() - self.started
        return self.n / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float:
        rate = self.rate
        return (self.total - self.n) / rate if rate > 0 else float("nan")

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
        if status is not None:
            self.status = status  # formatted only when drawn
        if desc is not None:
            self.desc = desc
        now = time.monotonic()
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
