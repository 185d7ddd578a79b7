"""Settings: output roots, the Visdom server (status, start, stop), default device, queue size."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.errors import UserError
from nectargan.toolbox.pages import Page
from nectargan.toolbox.settings import DEVICE_CHOICES, MAX_CONCURRENCY

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="settings", title="Settings", path="/settings", order=90)
FIELDS = ("output_roots", "visdom_port", "default_device", "concurrency")


def visdom_status(toolbox: Toolbox) -> dict[str, Any]:
    from nectargan.visualizer.visdom import server

    return asdict(server.status(toolbox.visdom_port()))


def start_visdom(toolbox: Toolbox) -> str:
    """Start the managed loopback server on the Settings port (or find one answering)."""
    from nectargan.visualizer.visdom import server

    options = server.ServerOptions(port=toolbox.visdom_port(), env_dir=server.default_env_dir())
    record, started = server.start(options)
    if started:
        return f"Visdom server started on port {record.port} (pid {record.pid})"
    return f"a Visdom server already answers on port {record.port}"


def stop_visdom(toolbox: Toolbox) -> str:
    from nectargan.visualizer.visdom import server

    port = toolbox.visdom_port()
    if server.stop(port):
        return f"Visdom server on port {port} stopped"
    return f"no Visdom server started by nectargan runs on port {port}"


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    def back(notice: str = "", error: str = "") -> RedirectResponse:
        query = f"?notice={quote(notice)}" if notice else f"?error={quote(error)}" if error else ""
        return RedirectResponse(f"/settings{query}", status_code=303)

    def page(request: Request) -> Response:  # sync: the Visdom probe runs in a worker thread
        return toolbox.render(
            request,
            "settings.html",
            active="settings",
            title="Settings",
            settings=toolbox.settings.get(),
            output_roots=toolbox.output_roots(),
            roots=toolbox.roots,
            devices=DEVICE_CHOICES,
            max_concurrency=MAX_CONCURRENCY,
            visdom=visdom_status(toolbox),
            notice=request.query_params.get("notice", ""),
            error=request.query_params.get("error", ""),
        )

    async def save(request: Request) -> Response:
        form = await request.form()
        values = {k: form[k] for k in FIELDS if k in form}
        try:
            toolbox.settings.update(values)
        except UserError as exc:
            return back(error=str(exc))
        return back(notice="settings saved")

    def visdom(request: Request) -> Response:  # sync: starting a server waits for it
        try:
            if request.path_params["action"] == "start":
                return back(notice=start_visdom(toolbox))
            return back(notice=stop_visdom(toolbox))
        except UserError as exc:
            return back(error=str(exc))

    return [
        Route("/settings", page),
        Route("/settings", save, methods=["POST"]),
        Route("/settings/visdom/{action:str}", visdom, methods=["POST"]),
    ]
