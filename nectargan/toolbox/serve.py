"""Run the Toolbox in the foreground: print the URL with its token, serve until Ctrl-C.

Stopping the Toolbox never stops a training run: each was started in a
session of its own, and the last lines printed name the ones still going.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
import time
from types import FrameType
from typing import TextIO

import uvicorn

from nectargan.errors import UserError
from nectargan.toolbox.context import ToolboxOptions

TICK_S = 1.0  # how often the idle server wakes (uvicorn's own loop: ten times a second)


class ToolboxError(UserError):
    """The Toolbox cannot start as asked (port taken, bad root); the message says why."""


def is_loopback_host(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def url_for(options: ToolboxOptions, with_token: bool = True) -> str:
    host = options.host
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{options.port}/"
    return url + (f"?token={options.token}" if with_token else "")


def check_port_free(host: str, port: int) -> None:
    """Say now, in one line, that the port is taken (uvicorn would log a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ToolboxError(
                f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                "choose another port"
            ) from None


def announce(options: ToolboxOptions, out: TextIO) -> None:
    if not is_loopback_host(options.host):
        print(
            f"warning: --host {options.host} makes the Toolbox reachable from other machines; "
            "anyone with the token can start processes and read files under the roots. "
            "Prefer 127.0.0.1 with an SSH tunnel (ssh -L 8765:127.0.0.1:8765 HOST)",
            file=sys.stderr,
        )
    roots = ", ".join(str(r) for r in options.roots)
    print(f"NectarGAN Toolbox: roots {roots}; state in {options.state_dir}", file=out)
    print("Open this URL (it holds the access token; keep it private):", file=out)
    print(f"    {url_for(options)}", file=out)
    print("Ctrl-C stops the Toolbox; training runs it started keep going.", file=out, flush=True)


def open_when_ready(options: ToolboxOptions, timeout: float = 10.0) -> None:
    """Open the browser once the port answers (from a thread, so serving starts at once)."""

    def wait_and_open() -> None:
        deadline = time.monotonic() + timeout
        target = "127.0.0.1" if options.host in ("0.0.0.0", "localhost") else options.host
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((target, options.port), timeout=0.5):
                    import webbrowser  # only for --open: it costs ~10 ms to import

                    webbrowser.open(url_for(options))
                    return
            except OSError:
                time.sleep(0.1)

    threading.Thread(target=wait_and_open, daemon=True).start()


class QuietServer(uvicorn.Server):
    """uvicorn's server, waking once a second when idle instead of ten times (those
    wake-ups were most of what an idle Toolbox cost a training run beside it), and
    at once on Ctrl-C or SIGTERM."""

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        while not await self.on_tick(0):  # tick 0: its once-a-second work (the Date header)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)


def serve(options: ToolboxOptions, open_browser: bool = False, out: TextIO = sys.stdout) -> int:
    from nectargan.toolbox.app import create_app

    check_port_free(options.host, options.port)
    app = create_app(options)
    announce(options, out)
    if open_browser:
        open_when_ready(options)
    # open event streams (a browser tab) never end by themselves: without a bound on the
    # graceful shutdown, Ctrl-C would wait for every tab to be closed
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after its shutdown
        QuietServer(config).run()
    toolbox = app.state.toolbox
    toolbox.launcher.refresh()
    live = [
        launch for launch in toolbox.launcher.launches.values() if toolbox.launcher.alive(launch)
    ]
    print("Toolbox stopped.", file=out)
    for launch in live:
        where = launch.experiment_dir or launch.log
        print(f"  still training: pid {launch.pid} ({where})", file=out)
    if live:
        print("Those runs keep going; a new Toolbox shows them and can stop them.", file=out)
    tell_running_jobs(options, out)
    return 0


def tell_running_jobs(options: ToolboxOptions, out: TextIO) -> None:
    """Name the page jobs (test, infer, export) left running: each is a command of its own
    that goes on to its end, and a new Toolbox on the same state folder lists it again."""
    from nectargan.toolbox.child_jobs import running_jobs

    jobs = running_jobs(options.state_dir)
    for job in jobs:
        print(f"  still running: {job.kind} pid {job.pid} ({job.label}); log {job.log}", file=out)
    if jobs:
        print(
            f"Those jobs keep going; a new Toolbox with --state-dir {options.state_dir} lists them "
            "on its Testing and Utilities pages and can stop them.",
            file=out,
        )
