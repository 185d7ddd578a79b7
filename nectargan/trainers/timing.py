"""``timing.json``: how long each epoch took, kept in the experiment directory.

Reviews of a finished (or crashed) run show real epoch durations from this
file instead of guessing them from file times. One small entry per epoch;
the file is rewritten whole (atomically) each epoch and appended to on resume.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.utils.atomic import atomic_write_text

TIMING_FILE = layout.TIMING_FILE
FORMAT = "nectargan-timing"


def read_timing(experiment_dir: str | Path) -> list[dict[str, Any]]:
    """The recorded epochs, oldest first; empty when the file is missing or unreadable."""
    try:
        data = json.loads((Path(experiment_dir) / TIMING_FILE).read_text())
    except (OSError, ValueError):
        return []
    epochs = data.get("epochs") if isinstance(data, dict) else None
    return [e for e in epochs if isinstance(e, dict)] if isinstance(epochs, list) else []


def record_epoch(experiment_dir: str | Path, epoch: int, seconds: float, steps: int) -> Path:
    """Append one epoch (1-based number, wall seconds, optimizer steps) to the file."""
    epochs = read_timing(experiment_dir)
    epochs.append(
        {
            "epoch": epoch,
            "seconds": round(seconds, 3),
            "steps": steps,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    payload = {"format": FORMAT, "epochs": epochs}
    return atomic_write_text(Path(experiment_dir) / TIMING_FILE, json.dumps(payload, indent=1))
