"""The app factory: the gate, the pages (one module each), static files, the scheduler.

``create_app(options)`` returns a Starlette app whose every request passes
:class:`~nectargan.toolbox.security.Guard` first. Pages come from
:data:`nectargan.toolbox.pages.PAGE_MODULES`; see that module for how one
registers. The scheduler thread reaps child runs and starts queued ones.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import traceback
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from nectargan.toolbox.context import STATIC_DIR, Toolbox, ToolboxOptions
from nectargan.toolbox.pages import PAGE_MODULES
from nectargan.toolbox.security import Guard, GuardSettings, allowed_hosts_for
from nectargan.utils.plugins import present_modules

SCHEDULER_INTERVAL_S = 1.0


class Scheduler:
    """A daemon thread: every second, reap ended children and let the queue start runs."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="toolbox-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(SCHEDULER_INTERVAL_S):
            try:
                self.toolbox.launcher.refresh()
                self.toolbox.queue.tick()
            except Exception:  # a bad tick must not end the queue for good: say it, go on
                traceback.print_exc(file=sys.stderr)


def load_pages(toolbox: Toolbox) -> list[BaseRoute]:
    """Import each page module, note its nav entry, collect its routes."""
    routes: list[BaseRoute] = []
    for module in present_modules(PAGE_MODULES):  # a page not in this checkout is skipped
        page = getattr(module, "PAGE", None)
        if page is not None:
            toolbox.pages.append(page)
        routes += module.routes(toolbox)
    return routes


def create_app(options: ToolboxOptions) -> Starlette:
    toolbox = Toolbox(options)
    routes = load_pages(toolbox)
    routes.append(Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"))
    guard = GuardSettings(
        token=options.token,
        port=options.port,
        allowed_hosts=allowed_hosts_for(options.host, options.allow_hosts),
        visdom_port=toolbox.visdom_port,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scheduler = Scheduler(toolbox) if options.background else None
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, settings=guard)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.toolbox = toolbox
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """JSON for the API, a page with the nav bar for a browser."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    toolbox: Toolbox = request.app.state.toolbox
    return toolbox.render(
        request, "error.html", status_code=exc.status_code, message=exc.detail, title="Error"
    )
