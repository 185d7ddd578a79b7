"""The JSON API for scripts (``Authorization: token ...``): runs, start, stop, resume, queue.

Same gate and same services as the pages; documented with curl examples in
docs/toolbox.md. Errors answer ``{"error": "...", "problems": [...]}`` with
400 (bad input), 404 (no such run or entry) or 409 (the run is busy).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.toolbox.launcher import LaunchRefused
from nectargan.toolbox.pages.queue import queue_payload
from nectargan.toolbox.pages.run import run_payload
from nectargan.toolbox.pages.runs import runs_payload
from nectargan.toolbox.run_queue import QueueError

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = None
MAX_BODY = 1_000_000  # a config is a few KB; anything near this is not one
API_RUN = "/api/runs/{root:int}/{name}"


def error(message: str, status: int, problems: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "problems": problems or [message]}, status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (empty body: ``{}``); a bad one is a 400 naming why."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"body of {len(body)} bytes: expected at most {MAX_BODY}")
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, f"body: expected JSON ({exc})") from None
    if not isinstance(data, dict):
        raise HTTPException(400, f"body: expected a JSON object, got {type(data).__name__}")
    return data


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    def status(request: Request) -> Response:
        from nectargan.toolbox.pages.settings import visdom_status

        runs = toolbox.runs.list()
        return JSONResponse(
            {
                "roots": [str(r) for r in toolbox.roots],
                "output_roots": [str(r) for r in toolbox.output_roots()],
                "settings": toolbox.settings.get().__dict__,
                "running": [r.id for r in runs if r.state == "running"],
                "queued": sum(1 for e in toolbox.queue.list() if e.state == "queued"),
                "visdom": visdom_status(toolbox),
            }
        )

    def list_runs(request: Request) -> Response:
        return JSONResponse(runs_payload(toolbox))

    def one_run(request: Request) -> Response:
        p = request.path_params
        return JSONResponse(run_payload(toolbox, p["root"], p["name"]))

    async def start(request: Request) -> Response:
        data = await json_body(request)
        try:
            config = await run_in_threadpool(toolbox.launcher.config_from_request, data)
            launch = await run_in_threadpool(toolbox.launcher.start_new, config)
        except LaunchRefused as exc:
            return error(str(exc), 400, exc.problems)
        return JSONResponse({"launch": launch.to_json()}, status_code=201)

    async def act(request: Request) -> Response:
        p = request.path_params
        folder = toolbox.run_dir(p["root"], p["name"])
        data = await json_body(request)
        try:
            if p["action"] == "stop":
                return JSONResponse({"stopped": toolbox.launcher.stop(folder)})
            if p["action"] != "resume":
                raise HTTPException(404, f"no action {p['action']!r} (expected stop or resume)")
            extend = int(data.get("extend") or 0) if str(data.get("extend", 0)).isdigit() else -1
            if extend < 0:
                return error(
                    f"extend: expected a whole number of epochs, got {data['extend']!r}", 400
                )
            launch = await run_in_threadpool(toolbox.launcher.resume, folder, extend)
        except LaunchRefused as exc:
            return error(str(exc), exc.status)
        return JSONResponse({"launch": launch.to_json()}, status_code=201)

    def get_queue(request: Request) -> Response:
        return JSONResponse(queue_payload(toolbox))

    async def enqueue(request: Request) -> Response:
        data = await json_body(request)
        try:
            config = await run_in_threadpool(toolbox.launcher.config_from_request, data)
        except LaunchRefused as exc:
            return error(str(exc), 400, exc.problems)
        return JSONResponse({"entry": toolbox.queue.add(config).summary()}, status_code=201)

    async def queue_action(request: Request) -> Response:
        entry, action = request.path_params["entry"], request.path_params["action"]
        data = await json_body(request)
        try:
            if action == "cancel":
                return JSONResponse({"entry": toolbox.queue.cancel(entry).summary()})
            if action == "move":
                position = data.get("position")
                if not isinstance(position, int) or isinstance(position, bool):
                    return error(f"position: expected a whole number, got {position!r}", 400)
                toolbox.queue.move(entry, position)
                return JSONResponse(queue_payload(toolbox))
        except QueueError as exc:
            return error(str(exc), 404 if "no such entry" in str(exc) else 409)
        raise HTTPException(404, f"no queue action {action!r} (expected cancel or move)")

    return [
        Route("/api/status", status),
        Route("/api/runs", list_runs),
        Route("/api/runs", start, methods=["POST"]),
        Route(API_RUN, one_run),
        Route(API_RUN + "/{action:str}", act, methods=["POST"]),
        Route("/api/queue", get_queue),
        Route("/api/queue", enqueue, methods=["POST"]),
        Route("/api/queue/{entry:str}/{action:str}", queue_action, methods=["POST"]),
    ]
