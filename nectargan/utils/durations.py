"""The one way a duration is written: ``4.2s``, ``42s``, ``1m15s``, ``1h01m40s``; ``?`` if unknown.

The console, the dashboard's run_info pane, ``report`` and ``replay`` all print
durations; one format means a number read in one place can be found in another.
"""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """``4.2`` -> ``'4.2s'``, ``75`` -> ``'1m15s'``, ``3725`` -> ``'1h02m05s'``; None/NaN -> ``'?'``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
