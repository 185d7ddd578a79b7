"""Helpers every bench script needs: a free loopback port and the CPU's name for reports.

The scripts run as ``python bench/NAME.py``, so this directory is on ``sys.path``
and they import it as ``_common``.
"""

from __future__ import annotations

import platform
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo), for the 'Machine:' line of a report."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
