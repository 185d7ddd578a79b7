"""Runs (home): every experiment under the output roots, live."""

from __future__ import annotations

import functools
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
    """What the Runs page and ``GET /api/runs`` show; the same object while nothing changed,
    and each unchanged run's row the same object as before (its stream serialises only
    the rows that changed)."""
    runs = toolbox.runs.list()
    roots = [str(p) for p in toolbox.output_roots()]
    memo = getattr(toolbox, "_runs_payload", None)
    if memo is None or memo[0] is not runs or memo[1]["output_roots"] != roots:
        rows = _rows(runs, memo[2] if memo is not None else {})
        memo = (runs, {"runs": [rows[id(s)][1] for s in runs], "output_roots": roots}, rows)
        toolbox._runs_payload = memo  # type: ignore[attr-defined]
    return memo[1]


def _rows(runs: list, before: dict[int, tuple]) -> dict[int, tuple]:
    """Each summary's JSON row, reused for a summary seen before (kept with its summary,
    so no id is reused while its row is)."""
    rows = {}
    for summary in runs:
        old = before.get(id(summary))
        rows[id(summary)] = old if old and old[0] is summary else (summary, summary.to_json())
    return rows


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    def home(request: Request) -> Response:  # sync: file reads run in a worker thread
        payload = runs_payload(toolbox)
        return toolbox.render(request, "runs.html", active="runs", title="Runs", **payload)

    async def events(request: Request) -> Response:
        produce = functools.partial(runs_payload, toolbox)
        return event_stream(request, produce, 2 * toolbox.options.poll_s, in_parts=True)

    return [Route("/", home), Route("/runs/events", events)]
