"""The one place that knows about sockets: an ASGI response streaming an SSE feed.

It sends the headers that keep proxies from buffering, a first `retry:`, each batch the feed
produces as one write, a `: ping` comment whenever the feed is idle for `keepalive` seconds,
and it notices a client that goes away. Uvicorn silently drops writes to a closed socket, so
a small task waits on `receive()` for `http.disconnect` and cancels the writer.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ssechat import sse

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer this response
    (b"connection", b"keep-alive"),
]
PING = sse.encode(comment="ping")


class Feed(Protocol):
    async def next(self, timeout: float) -> tuple[bytes, bool]:
        """The next bytes to send (b"" if nothing came within `timeout`) and whether the
        stream ends after them."""
        ...

    async def aclose(self) -> None: ...


class EventStreamResponse(Response):
    """Streams `feed` as `text/event-stream`. A `Response` subclass so FastAPI routes can
    return it; like starlette's `StreamingResponse` it skips `Response.__init__`, which would
    add a `content-length`."""

    media_type = "text/event-stream"

    def __init__(
        self,
        feed: Feed,
        *,
        keepalive: float,
        retry_ms: int | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        status_code: int = 200,  # FastAPI's OpenAPI reads the default status from here
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.feed = feed
        self.keepalive = keepalive
        self.preamble = sse.encode(retry=retry_ms) if retry_ms is not None else b""
        self.raw_headers = HEADERS + (headers or [])
        self.gone = False  # the client has left (a flag: an asyncio.Event costs ~1 KiB)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writer = asyncio.current_task()
        assert writer is not None
        watcher = asyncio.create_task(self._watch_disconnect(receive, writer))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            body, done = self.preamble, False
            while not done:
                data, done = await self.feed.next(self.keepalive)
                body += data or (b"" if done else PING)
                await send({"type": "http.response.body", "body": body, "more_body": not done})
                body = b""
        except asyncio.CancelledError:
            if not self.gone:
                raise
            writer.uncancel()  # our own cancellation, caused by the client leaving
        finally:
            watcher.cancel()
            await self.feed.aclose()

    async def _watch_disconnect(self, receive: Receive, writer: asyncio.Task[None]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        writer.cancel()
