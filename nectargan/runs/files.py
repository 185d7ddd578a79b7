"""What a run's folder tells without reading its logs: who holds it, how far it got.

Cheap enough to ask every second for hundreds of runs (a few ``stat``/``listdir``
calls), for callers that list runs or follow one (the Toolbox).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.runs.status import lock_is_held


def lock_holder(experiment_dir: Path) -> int | None:
    """The pid holding the experiment's lock, or None when no process holds it."""
    if not lock_is_held(experiment_dir):
        return None
    try:
        return int((experiment_dir / layout.LOCK_FILE).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def total_epochs(config: Any) -> int | None:
    train = config.get("train") if isinstance(config, dict) else None
    try:
        return int(train["epochs"]) + int(train["epochs_decay"])
    except (KeyError, TypeError, ValueError):
        return None


def epochs_from_files(folder: Path) -> int:
    """Checkpoints and examples are written only at epoch ends: the highest one counts."""
    numbers = [0]
    for sub, pattern in (
        (layout.CHECKPOINT_DIR, layout.CHECKPOINT_RE),
        (layout.EXAMPLES_DIR, layout.EXAMPLE_RE),
    ):
        try:
            names = os.listdir(folder / sub)
        except OSError:
            continue
        numbers += [int(m.group(1)) for n in names if (m := pattern.match(n))]
    return max(numbers)


def stat_signatures(folder: Path, names: tuple[str, ...]) -> tuple[tuple[int, int] | None, ...]:
    """(mtime, size) of each of ``names`` in ``folder`` (None when absent): the cache key of
    anything read from them. Plain strings, not Path objects: this runs for every run on
    every refresh of the Runs page, and pathlib's joins cost more than the ``stat`` calls."""
    base = os.fspath(folder) + os.sep
    out = []
    for name in names:
        try:
            st = os.stat(base + name)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)
