"""``timing.json``: how long each epoch took, kept in the experiment directory.

Reviews of a finished (or crashed) run show real epoch durations from this
file instead of guessing them from file times. One small entry per epoch, one
a line, appended in place (nectargan/utils/rows_json.py): an epoch's write
neither reads nor rewrites the earlier entries, so it costs the same however
long the run. A file in an older layout is rewritten whole once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.utils import rows_json

TIMING_FILE = layout.TIMING_FILE
FORMAT = "nectargan-timing"


def read_timing(experiment_dir: str | Path) -> list[dict[str, Any]]:
    """The recorded epochs, oldest first; empty when the file is missing or unreadable."""
    try:
        text = (Path(experiment_dir) / TIMING_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return []
    epochs = rows_json.load_rows(text, "epochs").get("epochs")
    return [e for e in epochs if isinstance(e, dict)] if isinstance(epochs, list) else []


def write_timing(experiment_dir: str | Path, epochs: list[dict[str, Any]]) -> Path:
    """Rewrite the file whole (atomic): an older layout, a resume's rewind."""
    path = Path(experiment_dir) / TIMING_FILE
    return rows_json.write_rows(path, {"format": FORMAT}, "epochs", epochs)


def record_epoch(experiment_dir: str | Path, epoch: int, seconds: float, steps: int) -> Path:
    """Append one epoch (1-based number, wall seconds, optimizer steps) to the file."""
    entry = {
        "epoch": epoch,
        "seconds": round(seconds, 3),
        "steps": steps,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = Path(experiment_dir) / TIMING_FILE
    if not rows_json.append_row(path, entry):
        write_timing(experiment_dir, [*read_timing(experiment_dir), entry])
    return path
