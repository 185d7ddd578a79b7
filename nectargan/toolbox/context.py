"""The running Toolbox: options, settings and the services every page shares.

Pages get this object in their ``routes(toolbox)`` and use its services
instead of touching files or processes themselves: ``runs`` (what the output
roots hold, read incrementally), ``launcher`` (start, stop, resume child
runs), ``queue`` (persisted runs waiting to start), ``settings``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from nectargan.toolbox.pages import Page
from nectargan.toolbox.paths import PathRefused, child_name
from nectargan.toolbox.security import new_token
from nectargan.toolbox.settings import SettingsStore

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
VISDOM_PROBE_S = 15.0


@dataclass
class ToolboxOptions:
    """What ``nectargan toolbox`` was started with (tests build these directly)."""

    roots: list[Path]
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    token: str = field(default_factory=new_token)
    allow_hosts: tuple[str, ...] = ()
    poll_s: float = 1.0  # how often a Run page looks at its run's files (Runs: twice that)
    python: str = sys.executable  # the interpreter child runs start with
    background: bool = True  # run the queue's scheduler thread


class Toolbox:
    """Shared state of one Toolbox process; built by :func:`nectargan.toolbox.app.create_app`."""

    def __init__(self, options: ToolboxOptions) -> None:
        from nectargan.toolbox.launcher import Launcher
        from nectargan.toolbox.run_queue import RunQueue
        from nectargan.toolbox.runs_index import RunIndex

        self.options = options
        self.roots = list(options.roots)
        options.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = options.state_dir
        self.settings = SettingsStore(options.state_dir, self.roots)
        loader = jinja2.FileSystemLoader([str(TEMPLATE_DIR)])
        self.templates = Jinja2Templates(env=jinja2.Environment(loader=loader, autoescape=True))
        self.pages: list[Page] = []
        self._visdom_probes: dict[int, tuple[float, bool]] = {}
        self.runs = RunIndex(self)
        self.launcher = Launcher(self)
        self.queue = RunQueue(self)

    # -- pages --------------------------------------------------------------------------

    def add_template_dir(self, folder: Path) -> None:
        """Let a page keep its templates beside its module (searched after ours)."""
        loader = self.templates.env.loader
        searchpath = getattr(loader, "searchpath", None)
        if searchpath is not None and str(folder) not in searchpath:
            searchpath.append(str(folder))

    def render(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        """A page from ``templates/``, with the nav bar and the page's own values."""
        nav = sorted(self.pages, key=lambda p: (p.order, p.title))
        context = {"nav": nav, "active": values.pop("active", ""), **values}
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    # -- runs ---------------------------------------------------------------------------

    def output_roots(self) -> list[Path]:
        return self.settings.output_roots()

    def run_dir(self, root: int, name: str) -> Path:
        """The experiment folder ``name`` in output root number ``root``, or 404."""
        roots = self.output_roots()
        if not 0 <= root < len(roots):
            raise HTTPException(404, f"no output root number {root}")
        try:
            child_name(name, "run")
        except PathRefused as exc:
            raise HTTPException(404, str(exc)) from None
        path = (roots[root] / name).resolve()
        if not path.is_dir() or not path.is_relative_to(roots[root].resolve()):
            raise HTTPException(404, f"no run {name!r} in {roots[root]}")
        return path

    def visdom_port(self) -> int:
        return self.settings.get().visdom_port

    def visdom_answers(self, port: int | None) -> bool:
        """Whether a Visdom server answers on ``port`` (asked at most every few seconds)."""
        if not port:
            return False
        now = time.monotonic()
        cached = self._visdom_probes.get(port)
        if cached is None or now - cached[0] > VISDOM_PROBE_S:
            from nectargan.visualizer.visdom.server import probe

            cached = (now, probe("127.0.0.1", port, timeout=0.5) == "visdom")
            self._visdom_probes[port] = cached
        return cached[1]
