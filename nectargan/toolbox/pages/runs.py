"""Runs (home): every experiment under the output roots, live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from nectargan.toolbox.pages import Page
from nectargan.toolbox.sse import event_stream

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="runs", title="Runs", path="/", order=10)


def runs_payload(toolbox: Toolbox) -> dict[str, Any]:
    """What the Runs page and ``GET /api/runs`` show; the same object while nothing changed."""
    runs = toolbox.runs.list()
    roots = [str(p) for p in toolbox.output_roots()]
    memo = getattr(toolbox, "_runs_payload", None)
    if memo is None or memo[0] is not runs or memo[1]["output_roots"] != roots:
        memo = (runs, {"runs": [s.to_json() for s in runs], "output_roots": roots})
        toolbox._runs_payload = memo  # type: ignore[attr-defined]
    return memo[1]


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    def home(request: Request) -> Response:  # sync: file reads run in a worker thread
        payload = runs_payload(toolbox)
        return toolbox.render(request, "runs.html", active="runs", title="Runs", **payload)

    async def events(request: Request) -> Response:
        return event_stream(request, lambda: runs_payload(toolbox), 2 * toolbox.options.poll_s)

    return [Route("/", home), Route("/runs/events", events)]
