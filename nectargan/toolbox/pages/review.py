"""Review: one run's losses (weighted and raw), validation, lr, throughput, examples per
epoch, config and timing; or 2-8 runs compared as ``nectargan report A B`` compares them.

The data comes from :mod:`nectargan.toolbox.review_data` (the review package the
commands use); the page draws it with the Toolbox's own small SVG charts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.errors import UserError
from nectargan.toolbox import review_data
from nectargan.toolbox.pages import Page

if TYPE_CHECKING:
    from pathlib import Path

    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="review", title="Review", path="/review", order=45)


def run_ids(values: list[str]) -> list[tuple[int, str]]:
    """``["0/name", ...]`` -> ``[(0, "name"), ...]``; a malformed one is refused naming it."""
    out = []
    for value in values:
        root, _, name = value.partition("/")
        if not root.isdigit() or not name:
            raise HTTPException(400, f"run {value!r}: expected <output root number>/<run name>")
        out.append((int(root), name))
    return out


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    def page(request: Request) -> Response:
        runs = [s.to_json() for s in toolbox.runs.list()]
        chosen = request.query_params.getlist("run")
        return toolbox.render(
            request, "review.html", active="review", title="Review", runs=runs, chosen=chosen
        )

    def one(request: Request) -> Response:
        folder = toolbox.run_dir(request.path_params["root"], request.path_params["name"])
        return JSONResponse(read_or_refuse(lambda: review_data.one_run(folder)))

    def many(request: Request) -> Response:
        ids = run_ids(request.query_params.getlist("run"))
        if not 2 <= len(ids) <= review_data.MAX_COMPARE:
            raise HTTPException(
                400, f"compare: expected 2-{review_data.MAX_COMPARE} runs, got {len(ids)}"
            )
        folders: list[Path] = [toolbox.run_dir(root, name) for root, name in ids]
        labels = [name for _, name in ids]
        return JSONResponse(read_or_refuse(lambda: review_data.compared(folders, labels)))

    return [
        Route("/review", page),
        Route("/api/review/runs/{root:int}/{name}", one),
        Route("/api/review/compare", many),
    ]


def read_or_refuse(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The payload, or the review's own one-line refusal as a 400 (never a traceback)."""
    try:
        return read()
    except UserError as exc:
        raise HTTPException(400, str(exc)) from None
    except FileNotFoundError as exc:  # the run was deleted while it was read
        raise HTTPException(404, f"the run's files are gone: {exc.filename}") from None
