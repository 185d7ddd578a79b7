"""Server-sent events: a page's live data, pushed when it changes.

The producer runs in a worker thread (it reads files), at most every
``interval`` seconds, and a message goes out only when its JSON differs from
the last one sent. A producer that returns the very same object when nothing
changed is not even serialised again, so an idle page costs a few ``stat``
calls per interval and no traffic. A comment line every 15 s keeps proxies and tunnels from closing a
quiet stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

KEEPALIVE_S = 15.0


def event_stream(
    request: Request, produce: Callable[[], Any], interval: float
) -> StreamingResponse:
    """A ``text/event-stream`` of ``produce()``'s value, sent on each change."""

    async def events() -> AsyncIterator[str]:
        last, last_value, last_sent_at = None, None, time.monotonic()
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            value = await run_in_threadpool(produce)
            text = last if value is last_value else json.dumps(value, separators=(",", ":"))
            last_value = value
            if text != last:
                last, last_sent_at = text, time.monotonic()
                yield f"data: {text}\n\n"
            elif time.monotonic() - last_sent_at > KEEPALIVE_S:
                last_sent_at = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(interval)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
