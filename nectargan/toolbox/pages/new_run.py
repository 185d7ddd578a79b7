"""New run: a form generated from the config schema (filled in by the ``newrun`` work).

This stub shows where the page plugs in: its routes, its template, and the
services it calls to start or queue what the form describes:
``toolbox.launcher.prepare_config(dict)`` (schema check, paths confined to the
roots; raises ``LaunchRefused`` with ``.problems``), then
``toolbox.launcher.start_new(config)`` or ``toolbox.queue.add(config)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from nectargan.toolbox.pages import Page

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="new_run", title="New run", path="/new", order=20)


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    async def new_run(request: Request) -> Response:
        return toolbox.render(request, "new_run.html", active="new_run", title="New run")

    return [Route("/new", new_run)]
