"""Run: one experiment live (epoch, it/s, ETA, log, curves, metrics, examples, checkpoints)
with Stop, Resume and Extend, and its Visdom env when a server answers."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.toolbox.launcher import LaunchRefused
from nectargan.toolbox.paths import PathRefused, file_in
from nectargan.toolbox.security import content_security_policy
from nectargan.toolbox.sse import event_stream

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = None  # reached from the Runs page, not the nav bar
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
RUN = "/runs/{root:int}/{name}"
ACTIONS = ("stop", "resume", "extend")


def run_payload(
    toolbox: Toolbox, root: int, name: str, folder: Path | None = None
) -> dict[str, Any]:
    """The Run page's live data (also ``GET /api/runs/{root}/{name}``); the same object
    while nothing changed, so its stream skips serialising it. A stream passes the
    ``folder`` it found once; it is then only checked to be still there."""
    if folder is None:
        folder = toolbox.run_dir(root, name)
    elif not os.path.isdir(folder):
        raise HTTPException(404, f"no run {name!r} in output root {root}")
    watch = toolbox.runs.watch(folder)
    detail = watch.read()
    target = detail["visdom"]
    up = bool(target) and on_loopback(target) and toolbox.visdom_answers(target["port"])
    memo = watch.memo
    # the watch looks at every file a summary is read from: no change there, none here
    unchanged = memo is not None and memo[0] is detail
    summary = memo[3] if unchanged else toolbox.runs.get(root, folder)
    starting = summary.state != "running" and toolbox.launcher.starting(folder) is not None
    if not unchanged or memo[1:3] != (up, starting):
        payload = {**detail, "summary": summary.to_json(), "visdom_up": up}
        if starting:  # started or resumed by us, its record not saying so yet: not "interrupted"
            payload["summary"] = {**payload["summary"], "state": "starting", "label": "starting"}
            payload["running"] = True
        memo = watch.memo = (detail, up, starting, summary, payload)
    return memo[4]


def on_loopback(target: dict[str, Any]) -> bool:
    """Whether the run's Visdom server is on this machine (only such a one is embedded: the
    frame is this host at the run's port, as the browser reaches the Toolbox)."""
    from nectargan.visualizer.visdom.server import is_loopback

    server = str(target.get("server") or "localhost")
    return is_loopback(urlparse(server if "://" in server else f"http://{server}").hostname or "")


def parse_extend(value: Any) -> int:
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise LaunchRefused(f"extend: expected a whole number of epochs 1-100000, got {value!r}")
    return int(text)


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    def back(root: int, name: str, notice: str = "", error: str = "") -> RedirectResponse:
        query = f"?notice={quote(notice)}" if notice else f"?error={quote(error)}" if error else ""
        return RedirectResponse(f"/runs/{root}/{quote(name)}{query}", status_code=303)

    def page(request: Request) -> Response:  # sync: Starlette runs it in a worker thread
        root, name = request.path_params["root"], request.path_params["name"]
        payload = run_payload(toolbox, root, name)
        response = toolbox.render(
            request,
            "run.html",
            active="runs",
            title=name,
            run=payload,
            root=root,
            name=name,
            notice=request.query_params.get("notice", ""),
            error=request.query_params.get("error", ""),
        )
        target = payload.get("visdom") or {}
        own_port = target.get("port") if on_loopback(target) else None
        if own_port and own_port != toolbox.visdom_port():  # the run streams to another server
            policy = content_security_policy(
                request.headers.get("host", ""), [toolbox.visdom_port(), own_port]
            )
            response.headers["content-security-policy"] = policy
        return response

    async def events(request: Request) -> Response:
        root, name = request.path_params["root"], request.path_params["name"]
        folder = toolbox.run_dir(root, name)  # 404 before the stream starts
        produce = functools.partial(run_payload, toolbox, root, name, folder)
        return event_stream(request, produce, toolbox.options.poll_s, in_parts=True)

    def file(request: Request) -> Response:
        folder = toolbox.run_dir(request.path_params["root"], request.path_params["name"])
        relative = request.path_params["relative"]
        try:
            path = file_in(folder, relative, toolbox.roots)
        except PathRefused as exc:
            raise HTTPException(404, str(exc)) from None
        kind = IMAGE_TYPES.get(Path(path).suffix.lower())
        if kind is None or not path.is_file():
            raise HTTPException(404, f"no image {relative!r} in this run")
        return FileResponse(path, media_type=kind)

    async def action(request: Request) -> Response:
        root, name = request.path_params["root"], request.path_params["name"]
        folder = toolbox.run_dir(root, name)
        what = request.path_params["action"]
        if what not in ACTIONS:
            raise HTTPException(404, f"no action {what!r} (expected one of {', '.join(ACTIONS)})")
        form = await request.form()
        try:
            if what == "stop":
                pid = toolbox.launcher.stop(folder)
                return back(root, name, notice=f"stop sent to pid {pid}: it saves interrupted.pt")
            extend = parse_extend(form.get("epochs")) if what == "extend" else 0
            launch = toolbox.launcher.resume(folder, extend_by=extend)
            return back(root, name, notice=f"resumed (pid {launch.pid})")
        except LaunchRefused as exc:
            return back(root, name, error=str(exc))

    return [
        Route(RUN, page),
        Route(RUN + "/events", events),
        Route(RUN + "/file/{relative:path}", file),
        Route(RUN + "/{action:str}", action, methods=["POST"]),
    ]
