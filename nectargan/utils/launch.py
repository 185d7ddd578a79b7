"""What the launcher (torchrun) told this process, read without importing torch."""

from __future__ import annotations

import os


def launched_world_size() -> int:
    """Processes in the job according to the launcher's environment (1 without one)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1
