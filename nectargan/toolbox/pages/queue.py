"""Queue: runs waiting to start one after another (N at once, set in Settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.toolbox.pages import Page
from nectargan.toolbox.run_queue import QueueError
from nectargan.toolbox.sse import event_stream

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="queue", title="Queue", path="/queue", order=30)


def queue_payload(toolbox: Toolbox) -> dict:
    return {
        "entries": [e.summary() for e in toolbox.queue.list()],
        "concurrency": toolbox.settings.get().concurrency,
    }


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    def back(error: str = "") -> RedirectResponse:
        return RedirectResponse("/queue" + (f"?error={quote(error)}" if error else ""), 303)

    def page(request: Request) -> Response:
        return toolbox.render(
            request,
            "queue.html",
            active="queue",
            title="Queue",
            error=request.query_params.get("error", ""),
            **queue_payload(toolbox),
        )

    async def events(request: Request) -> Response:
        return event_stream(request, lambda: queue_payload(toolbox), toolbox.options.poll_s)

    async def change(request: Request) -> Response:
        entry_id, action = request.path_params["entry"], request.path_params["action"]
        form = await request.form()
        try:
            if action == "cancel":
                toolbox.queue.cancel(entry_id)
            elif action == "move":
                toolbox.queue.move(entry_id, move_target(toolbox, entry_id, form.get("to")))
            else:
                raise HTTPException(404, f"no queue action {action!r}")
        except QueueError as exc:
            return back(str(exc))
        return back()

    async def clear(request: Request) -> Response:
        toolbox.queue.remove_finished()
        return back()

    return [
        Route("/queue", page),
        Route("/queue/events", events),
        Route("/queue/clear", clear, methods=["POST"]),
        Route("/queue/{entry:str}/{action:str}", change, methods=["POST"]),
    ]


def move_target(toolbox: Toolbox, entry_id: str, to: object) -> int:
    """``up``, ``down``, ``first`` or a position among the queued entries."""
    waiting = [e.id for e in toolbox.queue.list() if e.state == "queued"]
    here = waiting.index(entry_id) if entry_id in waiting else 0
    text = str(to or "").strip()
    moves = {"up": here - 1, "down": here + 1, "first": 0, "last": len(waiting)}
    if text in moves:
        return moves[text]
    if text.isdigit():
        return int(text)
    raise QueueError(f"move: expected up, down, first, last or a position, got {text!r}")
