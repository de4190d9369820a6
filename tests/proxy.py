"""A TCP relay that cuts its first connection in the middle of an SSE message, as a dying proxy
or a dropped mobile link would: what resuming clients are tested through."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# The start of a delta message, up to its data value: the cut goes a little past this point,
# so the client holds `id:` and `event:` lines and half a `data:` line, but no blank line.
MESSAGE_START = re.compile(rb"id: (\d+)\nevent: delta\ndata: ")


@dataclass
class Connection:
    """What the proxy saw on one client connection."""

    request: bytearray = field(default_factory=bytearray)
    response: bytearray = field(default_factory=bytearray)  # exactly what went to the client
    cut_in: int | None = None  # seq of the message the proxy cut in half
    cut_at: float | None = None  # when (time.time()) the client's socket was closed

    @property
    def request_headers(self) -> dict[str, str]:
        head = bytes(self.request).split(b"\r\n\r\n", 1)[0].decode("latin-1")
        pairs = (line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
        return {name.strip().lower(): value.strip() for name, value in pairs}

    @property
    def body(self) -> bytes:
        """The response body relayed so far (still in HTTP/1.1 chunked framing)."""
        _head, sep, body = bytes(self.response).partition(b"\r\n\r\n")
        return body if sep else b""


class CuttingProxy:
    """A TCP relay to `upstream_port` that cuts its first connection mid-message.

    On the first connection, once `cut_after` bytes of response body have gone through, it
    holds the response back until the next delta message starts, relays that message only up
    to the middle of its `data:` line, waits so the client surely parses that half, then closes
    the client's socket (FIN: what a dying proxy or a dropped mobile link looks like to it) and
    aborts the server's. Every later connection is relayed untouched.

    Runs its own event loop in a thread, because the test blocks on a Node subprocess.
    """

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.connections: list[Connection] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def __enter__(self) -> CuttingProxy:
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
        conn = Connection()
        self.connections.append(conn)
        cut = len(self.connections) == 1
        up_w: asyncio.StreamWriter | None = None
        pumps: list[asyncio.Task[None]] = []
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            pumps = [
                asyncio.create_task(self._requests(conn, client_r, up_w)),
                asyncio.create_task(self._responses(conn, up_r, client_w, cut)),
            ]
            # Either side hanging up (or the cut) ends the connection for both.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            client_w.close()
            if up_w is not None:
                if conn.cut_in is not None:
                    up_w.transport.abort()  # the server sees the connection die, not a goodbye
                else:
                    up_w.close()
            self._handlers.discard(me)

    async def _requests(
        self, conn: Connection, client_r: asyncio.StreamReader, up_w: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await client_r.read(65536):
                conn.request += data
                up_w.write(data)
                await up_w.drain()
        except OSError:
            pass

    async def _responses(
        self,
        conn: Connection,
        up_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        cut: bool,
    ) -> None:
        async def relay(data: bytes) -> None:
            conn.response += data
            client_w.write(data)
            await client_w.drain()

        held = b""  # response bytes held back while looking for a message to cut
        try:
            while data := await up_r.read(65536):
                if not cut or len(conn.body) < self.cut_after:
                    await relay(data)
                    continue
                held += data
                if match := MESSAGE_START.search(held):
                    # Two bytes into the JSON value (`{"`): a message that cannot be complete.
                    await relay(held[: match.end() + 2])
                    conn.cut_in = int(match[1])
                    # Let the client read and parse the half message before the connection
                    # dies, so that discarding it is really the client's job.
                    await asyncio.sleep(0.25)
                    conn.cut_at = time.time()
                    return
            # The response ended before a message could be cut: relay it, the test will say so.
            await relay(held)
        except OSError:
            pass
