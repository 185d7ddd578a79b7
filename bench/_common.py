"""Helpers the bench scripts share: a free port, a private Visdom server, the CPU's name.

The scripts run as ``python bench/NAME.py``, so this directory is on ``sys.path``
and they import it as ``_common``.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def visdom_server(workdir: Path, timeout: float = 30.0) -> Iterator[int]:
    """A private Visdom server on a free loopback port, envs and log in ``workdir``; yields the port.

    Stopped on exit, so a failing benchmark leaves no server behind.
    """
    with visdom_server_process(workdir, timeout) as (port, _pid):
        yield port


@contextmanager
def visdom_server_process(workdir: Path, timeout: float = 30.0) -> Iterator[tuple[int, int]]:
    """As :func:`visdom_server`, yielding ``(port, pid)``: the pid for reading its CPU time."""
    from nectargan.visualizer.visdom import server as managed

    opts = managed.ServerOptions(port=free_port(), host="127.0.0.1", env_dir=workdir / "envs")
    proc = managed.spawn(opts, workdir / "visdom.log")
    try:
        if not managed.wait_until_answering(opts, timeout, pid=proc.pid):
            raise RuntimeError(f"the Visdom server did not start within {timeout} s")
        yield opts.port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def process_cpu_s(pid: int) -> float:
    """CPU seconds of every thread of process ``pid`` (schedstat: nanoseconds, exact).

    Read from outside the process, so it measures a server or browser as well as us.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended between the listing and the read
    return total / 1e9


def process_cpu_ticks_s(pid: int) -> float:
    """CPU seconds of process ``pid`` from ``/proc/PID/stat`` (user + system, in clock
    ticks of 10 ms): unlike :func:`process_cpu_s` it keeps the time of threads that have
    ended (a server's idle worker threads do), at a coarser resolution."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, refused with the value named otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def vm_hwm_kib(fallback: float = float("nan")) -> float:
    """This address space's resident high-water mark in KiB (Linux's VmHWM), else ``fallback``.

    Unlike ``ru_maxrss`` it does not carry over fork and exec, so a child reports its own peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return fallback
