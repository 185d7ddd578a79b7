"""Upstream NectarGAN config files accepted where upstream users pass them.

Our ``--config`` refuses an upstream file and says to import it (``nectargan
config import`` lists what it could not map). The entry points upstream users
reach for (its trainer class, its console scripts) take it instead, converted
on the fly with a one-line notice.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from nectargan.config.config import Config, read_json
from nectargan.config.upstream import convert, is_upstream


def load_accepting_upstream(source: Any, who: str) -> Any:
    """``source`` for ``Config.load``, an upstream file or dict converted first (with a notice).

    For the entry points upstream users reach for (its trainer class, its
    console scripts): their config files work unchanged, and one line on
    stderr, starting with ``who``, says the config was imported. Anything
    else is returned as is, for ``Config.load`` to read or refuse.
    """
    data, name = source, "the config"
    if isinstance(source, str | PathLike):
        name = str(source)
        if not Path(source).is_file():
            return source
        data = read_json(Path(source))
    if not isinstance(data, Mapping) or not is_upstream(data):
        return source
    converted, notes = convert(data)
    config = Config(converted, source=f"{name} (imported from upstream NectarGAN's layout)")
    print(
        f"{who}: notice: {name} is an upstream NectarGAN config, imported on the fly "
        f"({len(notes)} key(s) not mapped or mapped approximately; `nectargan config import "
        f"FILE --output ours.json` writes it out and lists them)",
        file=sys.stderr,
    )
    return config
