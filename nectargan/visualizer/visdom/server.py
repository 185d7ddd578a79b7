"""A managed Visdom server: start it detached, find it again, stop it.

The server runs ``python -m nectargan.visualizer.visdom._serve`` (never through
a shell), with its output in a log file so that no pipe can fill up and stall
it, in a session of its own so that Ctrl-C in the starting terminal does not
reach it. What is known about a running server lives in a small JSON pid file
per port, so ``status`` and ``stop`` work from any later process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nectargan.errors import ConfigUserError, ServerUserError
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.outputs import output_dir
from nectargan.utils.processes import pid_alive, start_detached
from nectargan.visualizer.visdom.assets import assets_present
from nectargan.visualizer.visdom.origin_guard import check_allow_host

DEFAULT_PORT = 8097
DEFAULT_HOST = "127.0.0.1"
INSTALL_ASSETS_HINT = "nectargan visdom install-assets"
MISSING_ASSETS_LINE = (
    "nectargan: Visdom's web assets are missing, so the dashboard page cannot render "
    f"(the API still works and training data keeps flowing); install them with `{INSTALL_ASSETS_HINT}`."
)


class ServerError(ServerUserError):
    """The server could not be started, reached or stopped; the message says why."""


class PortTakenError(ServerError):
    """Something that is not Visdom holds the port; ``free_port`` is one to use instead."""

    def __init__(self, port: int, free_port: int | None) -> None:
        self.port, self.free_port = port, free_port
        instead = f", e.g. --port {free_port} (free now)" if free_port else ""
        super().__init__(
            f"port {port} is already in use by something that is not a Visdom server; "
            f"choose another with --port{instead}"
        )


# How far above a taken port to look for a free one to propose.
FREE_PORT_SEARCH = 50


def free_port_above(host: str, port: int) -> int | None:
    """The first port above ``port`` that nothing listens on and that ``host`` can bind."""
    bind = "127.0.0.1" if host in ("localhost",) else host
    for candidate in range(port + 1, min(port + 1 + FREE_PORT_SEARCH, 65536)):
        if probe(host, candidate, timeout=0.2) != "free":
            continue
        try:
            with socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET) as s:
                s.bind((bind, candidate))
        except OSError:
            continue
        return candidate
    return None


def data_dir() -> Path:
    """Root of NectarGAN's per-user data: ``$NECTARGAN_HOME`` or the XDG data dir."""
    if home := os.environ.get("NECTARGAN_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "nectargan"


def default_env_dir() -> Path:
    """Where Visdom envs are persisted unless ``--env-dir`` says otherwise."""
    return data_dir() / "visdom" / "envs"


def run_dir() -> Path:
    """Pid and log files of background servers, one pair per port."""
    return data_dir() / "visdom" / "run"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@dataclass
class ServerOptions:
    """How to run a server. ``login`` uses Visdom's login with credentials from
    ``VISDOM_USERNAME``/``VISDOM_PASSWORD`` (and ``VISDOM_COOKIE`` on first use).
    ``allow_hosts``: host names besides loopback ones that browsers may reach it by
    (every other name is refused, against DNS rebinding: ``origin_guard``)."""

    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    env_dir: Path = field(default_factory=default_env_dir)
    login: bool = False
    insecure: bool = False
    allow_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.env_dir = Path(self.env_dir).expanduser().resolve()
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigUserError(f"port must be an integer in 1..65535, got {self.port!r}")
        try:
            self.allow_hosts = tuple(check_allow_host(h) for h in self.allow_hosts)
        except ValueError as exc:
            raise ConfigUserError(str(exc)) from None

    @property
    def url(self) -> str:
        return url_for(self.host, self.port)

    def exposure_warning(self) -> str | None:
        """Refuse an open bind without login or ``--insecure``; warn either way."""
        if is_loopback(self.host):
            return None
        if not (self.login or self.insecure):
            raise ServerError(
                f"--host {self.host} would expose the Visdom server (and everything it shows) "
                "beyond this machine. Add --login (Visdom's login, credentials from "
                "VISDOM_USERNAME / VISDOM_PASSWORD) or --insecure to accept the risk."
            )
        how = "with login" if self.login else "WITHOUT any login (--insecure)"
        return f"warning: the Visdom server listens on {self.host}:{self.port}, reachable from other machines, {how}."

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "nectargan.visualizer.visdom._serve"]
        cmd += ["--port", str(self.port), "--host", self.host, "--env-dir", str(self.env_dir)]
        if self.login:
            cmd.append("--login")
        for name in self.allow_hosts:
            cmd += ["--allow-host", name]
        return cmd


@dataclass
class ServerRecord:
    """What the pid file remembers about a background server."""

    pid: int
    port: int
    host: str
    env_dir: str
    log_file: str
    url: str


def pid_file(port: int) -> Path:
    return run_dir() / f"visdom-{port}.json"


def log_file(port: int) -> Path:
    return run_dir() / f"visdom-{port}.log"


def read_record(port: int) -> ServerRecord | None:
    try:
        return ServerRecord(**json.loads(pid_file(port).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_record(record: ServerRecord) -> None:
    atomic_write_text(pid_file(record.port), json.dumps(asdict(record), indent=2), fsync=False)


def _is_our_server(pid: int) -> bool:
    """Guard against pid reuse: the process must be our serve module."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid_alive(pid)
    return b"nectargan.visualizer.visdom._serve" in cmdline


def probe(host: str, port: int, timeout: float = 1.0) -> str:
    """Classify a port: ``'visdom'``, ``'other'`` (something else answers) or ``'free'``."""
    target = "127.0.0.1" if host in ("0.0.0.0", "localhost") else ("::1" if host == "::" else host)
    try:
        with urllib.request.urlopen(f"{url_for(target, port)}/", timeout=timeout) as resp:
            body = resp.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return "other" if exc.code != 403 else "visdom"
    except (urllib.error.URLError, OSError):
        return "other" if _port_accepts(target, port) else "free"
    # The dashboard's title is "visdom"; with --login, "/" is the sign-in page, "Visdom Login".
    title = body.lower()
    return (
        "visdom"
        if "<title>visdom</title>" in title or "<title>visdom login</title>" in title
        else "other"
    )


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until_answering(opts: ServerOptions, deadline_s: float, pid: int | None = None) -> bool:
    """Poll until the server answers, the process dies, or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if probe(opts.host, opts.port, timeout=0.5) == "visdom":
            return True
        if pid is not None and not pid_alive(pid):
            return False
        time.sleep(0.1)
    return False


# How a bad env folder is named in errors (--env-dir, or the config's for an autostart).
ENV_DIR_WHAT = "Visdom env folder"


def spawn(opts: ServerOptions, log_path: Path) -> subprocess.Popen:
    """Start the server process fully detached, output appended to ``log_path``."""
    output_dir(opts.env_dir, ENV_DIR_WHAT)
    env = dict(os.environ)
    if opts.login:
        env["VISDOM_USE_ENV_CREDENTIALS"] = "1"
    return start_detached(opts.command(), log_path, env)


def login_problem(environ: dict[str, str] | None = None) -> str | None:
    """What ``--login`` lacks in the environment, or None when the server can start with it."""
    environ = os.environ if environ is None else environ
    missing = [v for v in ("VISDOM_USERNAME", "VISDOM_PASSWORD") if not environ.get(v)]
    if missing:
        return f"--login needs {' and '.join(missing)} set in the environment (Visdom's login)"
    from visdom.server.defaults import DEFAULT_ENV_PATH

    if not os.path.isfile(os.path.join(DEFAULT_ENV_PATH, "COOKIE_SECRET")) and not environ.get(
        "VISDOM_COOKIE"
    ):
        return "--login needs VISDOM_COOKIE (a secret string) in the environment the first time"
    return None


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(opts: ServerOptions, wait_s: float = 30.0) -> tuple[ServerRecord, bool]:
    """Start a background server, or reuse the Visdom server already on the port.

    Returns ``(record, started)``; ``started`` is False when an existing server
    was reused. Raises ServerError when the port holds something else or the
    new server does not answer within ``wait_s``.
    """
    opts.exposure_warning()
    if opts.login:
        problem = login_problem()
        if problem:  # the detached server would exit at once; say so now, not after wait_s
            raise ServerError(problem)
    state = probe(opts.host, opts.port)
    if state == "visdom":
        record = read_record(opts.port)
        if record is None or not pid_alive(record.pid):
            record = ServerRecord(
                -1, opts.port, opts.host, "(unknown: not started by nectargan)", "", opts.url
            )
        return record, False
    if state == "other":
        raise PortTakenError(opts.port, free_port_above(opts.host, opts.port))
    log_path = log_file(opts.port)
    proc = spawn(opts, log_path)
    record = ServerRecord(
        proc.pid, opts.port, opts.host, str(opts.env_dir), str(log_path), opts.url
    )
    _write_record(record)
    if not wait_until_answering(opts, wait_s, pid=proc.pid):
        _terminate(proc.pid, grace_s=2.0)
        proc.poll()
        pid_file(opts.port).unlink(missing_ok=True)
        raise ServerError(
            f"the Visdom server on port {opts.port} did not answer within {wait_s:.0f} s. "
            f"Last lines of {log_path}:\n{_log_tail(log_path)}"
        )
    return record, True


def _terminate(pid: int, grace_s: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def stop(port: int = DEFAULT_PORT, grace_s: float = 10.0) -> bool:
    """Stop the background server on ``port``; False when none of ours was running."""
    record = read_record(port)
    if record is None:
        return False
    running = pid_alive(record.pid) and _is_our_server(record.pid)
    if running:
        _terminate(record.pid, grace_s)
    pid_file(port).unlink(missing_ok=True)
    return running


@dataclass
class ServerStatus:
    running: bool
    port: int
    url: str
    pid: int | None
    env_dir: str | None
    log_file: str | None
    assets_installed: bool
    answering: str  # 'visdom', 'other' or 'free'


def status(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> ServerStatus:
    record = read_record(port)
    if record is not None and not pid_alive(record.pid):
        pid_file(port).unlink(missing_ok=True)
        record = None
    answering = probe(record.host if record else host, port)
    return ServerStatus(
        running=answering == "visdom",
        port=port,
        url=record.url if record else url_for(host, port),
        pid=record.pid if record else None,
        env_dir=record.env_dir if record else None,
        log_file=record.log_file if record else None,
        assets_installed=assets_present(),
        answering=answering,
    )


def ensure_local_server(
    port: int = DEFAULT_PORT, env_dir: Path | None = None, wait_s: float = 30.0
) -> str:
    """Make sure a loopback Visdom server answers on ``port``; return its URL."""
    opts = ServerOptions(port=port, env_dir=env_dir or default_env_dir())
    record, started = start(opts, wait_s=wait_s)
    if started and not assets_present():
        print(MISSING_ASSETS_LINE, file=sys.stderr)
    return record.url
