"""Server-sent events: a page's live data, pushed when it changes.

The producer runs in a worker thread (it reads files), at most every
``interval`` seconds, and a message goes out only when its JSON differs from
the last one sent. A producer that returns the very same object when nothing
changed is not even serialised again, so an idle page costs a few ``stat``
calls per interval and no traffic; one that changed only in part is
serialised only in that part (:class:`JsonParts`). A comment line every 15 s
keeps proxies and tunnels from closing a quiet stream.
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


class JsonParts:
    """``json.dumps(value, separators=(",", ":"))`` of a dict, reusing the text of each
    top-level value, and of each item of a top-level list, that is the very object it was
    the last time. Producers keep unchanged parts as the same objects and never change
    one in place, so a running run's loss curves are not serialised again every second
    because its log grew. The text is the same as one ``json.dumps`` would give."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Any, str]] = {}
        self._items: dict[int, tuple[Any, str]] = {}

    def dumps(self, value: Any) -> str:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return _dumps(value)
        values, items = {}, {}
        parts = []
        for key, part in value.items():
            cached = self._values.get(key)
            if cached is None or cached[0] is not part:
                cached = (part, self._list(part, items) if type(part) is list else _dumps(part))
            values[key] = cached
            parts.append(f"{_dumps(key)}:{cached[1]}")
        self._values, self._items = values, items
        return "{" + ",".join(parts) + "}"

    def _list(self, items: list, seen: dict[int, tuple[Any, str]]) -> str:
        texts = []
        for item in items:
            cached = self._items.get(id(item))
            if cached is None or cached[0] is not item:
                cached = (item, _dumps(item))
            seen[id(item)] = cached
            texts.append(cached[1])
        return "[" + ",".join(texts) + "]"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def event_stream(
    request: Request, produce: Callable[[], Any], interval: float, in_parts: bool = False
) -> StreamingResponse:
    """A ``text/event-stream`` of ``produce()``'s value, sent on each change. With
    ``in_parts``, the producer promises never to change a part in place once returned
    (see :class:`JsonParts`), and only its new parts are serialised."""

    async def events() -> AsyncIterator[str]:
        last, last_value, last_sent_at = None, None, time.monotonic()
        encode = JsonParts().dumps if in_parts else _dumps
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            value = await run_in_threadpool(produce)
            text = last if value is last_value else encode(value)
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
