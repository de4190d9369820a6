"""A TCP relay that cuts a browser's chat stream in the middle of an SSE message.

The browser loads the page through the relay, so every request it makes goes through it; the
first connection that carries `POST /v1/chat/stream` is cut inside its `cut_in_delta`-th delta
message (its `id:` and `event:` lines and two bytes of `data:` reach the browser, then the
socket closes and the server's side is aborted), as a dying proxy or a dropped mobile link
would. Every other connection, including the client's resume, is relayed untouched.

It runs its own event loop in a thread because Playwright's sync API blocks the test's.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

DELTA_START = re.compile(rb"id: (\d+)\nevent: delta\ndata: ")
CHAT_POST = b"POST /v1/chat/stream"


class StreamCuttingProxy:
    def __init__(self, upstream_port: int, cut_in_delta: int) -> None:
        self.upstream_port = upstream_port
        self.cut_in_delta = cut_in_delta
        self.port = 0
        self.cut_in: int | None = None  # seq of the message cut in half, once cut
        self._armed_once = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def __enter__(self) -> StreamCuttingProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)
        armed = asyncio.Event()  # this connection carries the chat POST to cut
        cut = asyncio.Event()
        up_w: asyncio.StreamWriter | None = None
        pumps: list[asyncio.Task[None]] = []
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            pumps = [
                asyncio.create_task(self._requests(client_r, up_w, armed)),
                asyncio.create_task(self._responses(up_r, client_w, armed, cut)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            client_w.close()
            if up_w is not None:
                if cut.is_set():
                    up_w.transport.abort()  # the server sees the connection die
                else:
                    up_w.close()
            self._handlers.discard(me)

    async def _requests(
        self, client_r: asyncio.StreamReader, up_w: asyncio.StreamWriter, armed: asyncio.Event
    ) -> None:
        seen = b""
        try:
            while data := await client_r.read(65536):
                seen = (seen + data)[-4096:]
                if not self._armed_once and CHAT_POST in seen:
                    self._armed_once = True
                    armed.set()  # before the server gets the request: no response can race it
                up_w.write(data)
                await up_w.drain()
        except OSError:
            pass

    async def _responses(
        self,
        up_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        armed: asyncio.Event,
        cut: asyncio.Event,
    ) -> None:
        received = b""
        try:
            while data := await up_r.read(65536):
                if not armed.is_set():
                    client_w.write(data)
                    await client_w.drain()
                    continue
                sent = len(received)
                received += data
                starts = list(DELTA_START.finditer(received))
                if len(starts) < self.cut_in_delta:
                    client_w.write(data)
                    await client_w.drain()
                    continue
                target = starts[self.cut_in_delta - 1]
                end = target.end() + 2  # two bytes into the JSON value: an unfinished message
                if end > sent:
                    client_w.write(received[sent:end])
                    await client_w.drain()
                self.cut_in = int(target[1])
                await asyncio.sleep(0.25)  # let the browser read the half message first
                cut.set()
                return
        except OSError:
            pass
