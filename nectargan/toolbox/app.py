"""The app factory: the gate, the pages (one module each), static files, the scheduler.

``create_app(options)`` returns a Starlette app whose every request passes
:class:`~nectargan.toolbox.security.Guard` first. Pages come from
:data:`nectargan.toolbox.pages.PAGE_MODULES`; see that module for how one
registers; a page named in :data:`~nectargan.toolbox.pages.LAZY_PAGES` is
imported on its first request (see :class:`PageRouter`), so the Toolbox starts
and answers without pydantic, numpy or PIL. The scheduler thread reaps child
runs and starts queued ones.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
import traceback
from collections.abc import AsyncIterator
from types import ModuleType

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from nectargan.toolbox.column_warmer import ColumnWarmer
from nectargan.toolbox.context import STATIC_DIR, Toolbox, ToolboxOptions
from nectargan.toolbox.pages import LAZY_PAGES, PAGE_MODULES
from nectargan.toolbox.security import Guard, GuardSettings, allowed_hosts_for
from nectargan.utils.plugins import present_modules

SCHEDULER_INTERVAL_S = 1.0
WARM_UP_DELAY_S = 3.0  # the lazy pages are imported this long after start, off the first answers


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


class PageRoutes:
    """Each page module's routes, in :data:`PAGE_MODULES` order; lazy pages on demand."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.lazy = [name for name in LAZY_PAGES if _present(name)]
        self._routes: dict[str, list[BaseRoute]] = {}
        self._lock = threading.Lock()
        for name, page in LAZY_PAGES.items():
            if name in self.lazy:
                toolbox.pages.append(page)
        eager = [name for name in PAGE_MODULES if name not in LAZY_PAGES]
        for module in present_modules(eager):  # a page not in this checkout is skipped
            self._add(module, nav=True)
        self.static = Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static")

    @property
    def complete(self) -> bool:
        return all(name in self._routes for name in self.lazy)

    def routes(self) -> list[BaseRoute]:
        ordered = [route for name in PAGE_MODULES for route in self._routes.get(name, [])]
        return [*ordered, self.static]

    def load_lazy(self) -> list[BaseRoute]:
        """Import the lazy pages (once, whoever asks first); the whole route list."""
        with self._lock:
            for module in present_modules(n for n in self.lazy if n not in self._routes):
                self._add(module, nav=False)
            return self.routes()

    def _add(self, module: ModuleType, nav: bool) -> None:
        page = getattr(module, "PAGE", None)
        if nav and page is not None:
            self.toolbox.pages.append(page)
        self._routes[module.__name__] = module.routes(self.toolbox)


class PageRouter(Router):
    """Starlette's router over the eager pages' routes until a request matches none of
    them: then the lazy pages are imported (in a worker thread) and it routes over all,
    exactly as if every page had been imported at start."""

    def __init__(self, pages: PageRoutes, **kwargs) -> None:
        super().__init__(routes=pages.routes(), **kwargs)
        self.pages = pages

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and not self.pages.complete and not self._matched(scope):
            self.routes = await run_in_threadpool(self.pages.load_lazy)
        await super().app(scope, receive, send)

    def warm_up(self) -> None:
        """Import the lazy pages ahead of their first request (from a timer thread)."""
        self.routes = self.pages.load_lazy()

    def _matched(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is Match.FULL for route in self.routes)


def _present(name: str) -> bool:
    """Whether a page module is in this checkout, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def create_app(options: ToolboxOptions) -> Starlette:
    toolbox = Toolbox(options)
    guard = GuardSettings(
        token=options.token,
        port=options.port,
        allowed_hosts=allowed_hosts_for(options.host, options.allow_hosts),
        visdom_port=toolbox.visdom_port,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scheduler = Scheduler(toolbox) if options.background else None
        warmer = ColumnWarmer()  # old runs' loss-log column files: quick first reviews

        def warm() -> None:
            router.warm_up()
            warmer.start([run.path for run in toolbox.runs.list()])

        warm_up = threading.Timer(WARM_UP_DELAY_S, warm)
        warm_up.daemon = True
        if scheduler is not None:
            scheduler.start()
            warm_up.start()
        try:
            yield
        finally:
            warm_up.cancel()
            warmer.stop()
            if scheduler is not None:
                scheduler.stop()

    router = PageRouter(PageRoutes(toolbox), lifespan=lifespan)
    app = Starlette(
        middleware=[Middleware(Guard, settings=guard)],
        exception_handlers={HTTPException: _http_error},
    )
    app.router = router  # built before the first request builds the middleware stack
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
