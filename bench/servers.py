"""The baselines: what a user would write instead of ssechat, each streaming the same bytes.

- A: a bare Starlette `StreamingResponse` yielding pre-encoded SSE bytes (the floor).
- B: sse-starlette's `EventSourceResponse` in a FastAPI route (what most FastAPI projects use),
  yielding dicts whose `data` is the pre-encoded JSON string.
- F: FastAPI's own SSE (`response_class=fastapi.sse.EventSourceResponse`, a generator yielding
  `ServerSentEvent(raw_data=...)`: its cheapest documented path).
- R: a raw uvloop `asyncio.Protocol` (httptools request parser) writing the same chunks:
  Python's ceiling for a streaming server.
- T: a trivial server that answers every request with one pre-built write of the whole
  response: the calibration of the load generator, no streaming at all.

A, B and F run under uvicorn with the configuration `ssechat serve` uses (uvloop, httptools,
log level warning). Every stream's producer awaits between events: `asyncio.sleep(delay)`,
or `asyncio.sleep(0)` when asked for events as fast as possible — as a real model's network
read does, and as the scripted model does in its `stamp` mode — so concurrent streams
interleave event by event in every server alike.

Keepalive: B and F have their own pings (B's `ping=`, F's module-level interval, set here);
A's generator sends `: ping` itself while it waits; R sends them from one shared timer.

Run one: `python -m bench.servers A --port 8001 [--keepalive 15]`. Every server answers
`GET /health` with 200 and `POST /stream` with `{"n", "delay", "stamp"}` (bench.wire.Ask).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, cast

import fastapi.routing
import httptools
import uvicorn
import uvloop
from fastapi import FastAPI
from pydantic import BaseModel
from sse_starlette import EventSourceResponse as SseStarletteResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from bench import wire

KEEPALIVE = 15.0  # set from --keepalive before an app is built


def _token(stamp: bool) -> bytes:
    return wire.stamp() if stamp else wire.FIXED_TOKEN


async def _pace(delay: float) -> None:
    await asyncio.sleep(delay)  # 0: one turn of the event loop


def _ask(body: bytes) -> wire.Ask:
    data = json.loads(body)
    return wire.Ask(int(data["n"]), float(data.get("delay", 0.0)), bool(data.get("stamp")))


# -- A: bare Starlette StreamingResponse --------------------------------------------------


def app_a() -> Starlette:
    fixed: dict[int, list[bytes]] = {}  # n -> pre-encoded events, built once

    async def events(ask: wire.Ask) -> AsyncIterator[bytes]:
        if not ask.stamp and ask.n not in fixed:
            fixed[ask.n] = [wire.event(i, wire.FIXED_TOKEN) for i in range(1, ask.n + 1)]
        pre = fixed.get(ask.n) if not ask.stamp else None
        for i in range(1, ask.n + 1):
            waited = 0.0
            while ask.delay - waited > KEEPALIVE:  # an idle model: keep the stream alive
                await asyncio.sleep(KEEPALIVE)
                waited += KEEPALIVE
                yield wire.PING
            await _pace(ask.delay - waited)
            yield pre[i - 1] if pre is not None else wire.event(i, _token(ask.stamp))

    async def stream(request: Request) -> StreamingResponse:
        ask = _ask(await request.body())
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(ask), media_type="text/event-stream", headers=headers)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/stream", stream, methods=["POST"]), Route("/health", health)])


# -- B: sse-starlette in FastAPI ----------------------------------------------------------


class StreamRequest(BaseModel):
    n: int
    delay: float = 0.0
    stamp: bool = False


def _fastapi() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def app_b() -> FastAPI:
    app = _fastapi()
    data = wire.data_json(wire.FIXED_TOKEN)

    @app.post("/stream")
    async def stream(req: StreamRequest) -> SseStarletteResponse:
        async def events() -> AsyncIterator[dict[str, Any]]:
            for i in range(1, req.n + 1):
                await _pace(req.delay)
                text = wire.data_json(wire.stamp()) if req.stamp else data
                yield {"event": "delta", "id": str(i), "data": text}

        return SseStarletteResponse(events(), ping=KEEPALIVE)

    return app


# -- F: FastAPI's own SSE ---------------------------------------------------------------


def app_f() -> FastAPI:
    # Imported here: only newer FastAPI releases have it (bench.runner skips F without it).
    from fastapi.sse import EventSourceResponse, ServerSentEvent

    # FastAPI reads its keepalive interval from this module-level name at each stream
    # (private, "importable so tests can monkeypatch it"); there is no public setting.
    fastapi.routing._PING_INTERVAL = KEEPALIVE  # type: ignore[attr-defined]

    app = _fastapi()
    data = wire.data_json(wire.FIXED_TOKEN)

    @app.post("/stream", response_class=EventSourceResponse)
    async def stream(req: StreamRequest) -> AsyncIterator[ServerSentEvent]:
        for i in range(1, req.n + 1):
            await _pace(req.delay)
            text = wire.data_json(wire.stamp()) if req.stamp else data
            yield ServerSentEvent(raw_data=text, event="delta", id=str(i))

    return app


# -- R and T: raw uvloop protocols ------------------------------------------------------

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\nx-accel-buffering: no\r\ntransfer-encoding: chunked\r\n\r\n"
)
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
END = b"0\r\n\r\n"


def chunk(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(body), body)


class _Raw(asyncio.Protocol):
    """An HTTP/1.1 keep-alive connection served without a framework."""

    streams: ClassVar[set[_Raw]] = set()  # connections with a response in progress (R's pings)

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body = bytearray()
        self.paused: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        _Raw.streams.discard(self)
        if self.task is not None:
            self.task.cancel()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.paused is not None and not self.paused.done():
            self.paused.set_result(None)
        self.paused = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        url, body = self.url, bytes(self.body)
        self.url, self.body = b"", bytearray()
        assert self.transport is not None
        if url != b"/stream":
            self.transport.write(OK)
            return
        self.respond(_ask(body))

    def respond(self, ask: wire.Ask) -> None:
        raise NotImplementedError


class RawStreaming(_Raw):
    """R: a task per stream writing each event as one chunk, with flow control."""

    def respond(self, ask: wire.Ask) -> None:
        self.task = asyncio.get_running_loop().create_task(self.stream(ask))

    async def stream(self, ask: wire.Ask) -> None:
        transport = self.transport
        assert transport is not None
        write = transport.write
        write(HEAD)
        _Raw.streams.add(self)
        fixed = None if ask.stamp else _fixed_chunks(ask.n)
        for i in range(1, ask.n + 1):
            await asyncio.sleep(ask.delay)
            write(fixed[i - 1] if fixed is not None else chunk(wire.event(i, wire.stamp())))
            if self.paused is not None:
                await self.paused
        _Raw.streams.discard(self)
        write(END)
        self.task = None


_FIXED: dict[int, list[bytes]] = {}


def _fixed_chunks(n: int) -> list[bytes]:
    if n not in _FIXED:
        _FIXED[n] = [chunk(wire.event(i, wire.FIXED_TOKEN)) for i in range(1, n + 1)]
    return _FIXED[n]


class Trivial(_Raw):
    """T: the whole response, built once per length, in one write."""

    whole: ClassVar[dict[int, bytes]] = {}

    def respond(self, ask: wire.Ask) -> None:
        if ask.n not in Trivial.whole:
            Trivial.whole[ask.n] = HEAD + b"".join(_fixed_chunks(ask.n)) + END
        assert self.transport is not None
        self.transport.write(Trivial.whole[ask.n])


def _ping_all(loop: asyncio.AbstractEventLoop) -> None:
    """R's keepalive: one timer for every stream, not one per stream."""
    ping = chunk(wire.PING)
    for conn in list(_Raw.streams):
        if conn.transport is not None and not conn.transport.is_closing():
            conn.transport.write(ping)
    loop.call_later(KEEPALIVE, _ping_all, loop)


async def _serve_raw(factory: Callable[[], asyncio.Protocol], port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", port, backlog=4096)
    loop.call_later(KEEPALIVE, _ping_all, loop)
    async with server:
        await server.serve_forever()


APPS: dict[str, Callable[[], Any]] = {"A": app_a, "B": app_b, "F": app_f}
RAW: dict[str, Callable[[], asyncio.Protocol]] = {"R": RawStreaming, "T": Trivial}
NAMES = (*RAW, *APPS)


def serve(name: str, port: int) -> None:
    if name in RAW:
        uvloop.run(_serve_raw(RAW[name], port))
        return
    config = uvicorn.Config(
        APPS[name](),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


def main(argv: list[str] | None = None) -> None:
    global KEEPALIVE
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keepalive", type=float, default=KEEPALIVE)
    args = parser.parse_args(argv)
    KEEPALIVE = args.keepalive
    serve(args.name, args.port)


if __name__ == "__main__":
    main()
