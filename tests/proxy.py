"""A TCP relay that cuts one connection in the middle of an SSE delta message, as a dying proxy
or a dropped mobile link would: what resuming clients (the Python client, Node's EventSource,
the page in Chromium) are tested through."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# The start of a delta message, up to its data value: the cut goes a little past this point,
# so the client holds `id:` and `event:` lines and half a `data:` line, but no blank line.
MESSAGE_START = re.compile(rb"id: (\d+)\nevent: delta\ndata: ")


def any_request(request: bytes) -> bool:
    """The default `cut_when`: the first connection that sends anything is the one cut."""
    return True


@dataclass
class Connection:
    """What the proxy saw on one client connection."""

    request: bytearray = field(default_factory=bytearray)  # everything the client sent
    response: bytearray = field(default_factory=bytearray)  # exactly what went to the client
    armed: bool = False  # this is the connection to cut
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
    """A TCP relay to `upstream_port` that cuts one connection mid-message.

    The connection cut is the first one for which `cut_when(request)` is true, asked as each
    piece of the request arrives with everything the client has sent on it so far (a browser
    loads the page through the relay too, and may keep a connection alive across requests).
    In its response, the message cut is the first delta that starts after `cut_after_bytes`
    bytes of body and is at least the `cut_in_delta`-th delta. The relay lets the client have
    that message only up to the middle of its `data:` line, waits so the client surely parses
    that half, then closes the client's socket (a FIN: what a dying proxy or a dropped mobile
    link looks like to it) and aborts the server's. Every other connection is relayed untouched.

    Runs its own event loop in a thread, because the tests block theirs (on a Node subprocess,
    on Playwright's sync API, on the sync client).
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        cut_when: Callable[[bytes], bool] = any_request,
        cut_after_bytes: int = 0,
        cut_in_delta: int = 1,
    ) -> None:
        self.upstream_port = upstream_port
        self.cut_when = cut_when
        self.cut_after_bytes = cut_after_bytes
        self.cut_in_delta = cut_in_delta
        self.connections: list[Connection] = []
        self.port = 0
        self._armed = False  # one connection only is ever cut
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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cut_in(self) -> int | None:
        """The seq of the message cut in half, once one was."""
        return next((c.cut_in for c in self.connections if c.cut_in is not None), None)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        # A connection accepted a moment ago has a handler that has not started: cancelled
        # now, it would never close its sockets (a ResourceWarning in whatever test runs when
        # the collector finds them). One turn starts it.
        await asyncio.sleep(0)
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        await asyncio.sleep(0)  # the sockets the handlers closed finish closing

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)
        conn = Connection()
        self.connections.append(conn)
        up_w: asyncio.StreamWriter | None = None
        pumps: list[asyncio.Task[None]] = []
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            pumps = [
                asyncio.create_task(self._requests(conn, client_r, up_w)),
                asyncio.create_task(self._responses(conn, up_r, client_w)),
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
                # Decided before the server gets the request, so no response can race it.
                if not self._armed and self.cut_when(bytes(conn.request)):
                    self._armed = conn.armed = True
                up_w.write(data)
                await up_w.drain()
        except OSError:
            pass

    def _message_to_cut(self, answer: bytes) -> re.Match[bytes] | None:
        """The start of the delta message to cut in `answer`, once it has arrived."""
        head, sep, _body = answer.partition(b"\r\n\r\n")
        if not sep:
            return None
        body_start = len(head) + len(sep)
        for n, match in enumerate(MESSAGE_START.finditer(answer, body_start), start=1):
            if n >= self.cut_in_delta and match.start() - body_start >= self.cut_after_bytes:
                return match
        return None

    async def _responses(
        self, conn: Connection, up_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        async def relay(data: bytes) -> None:
            conn.response += data
            client_w.write(data)
            await client_w.drain()

        # The response to the request that armed the connection. Earlier responses on a kept-
        # alive connection were relayed in full before the client could send that request.
        answer = b""
        try:
            while data := await up_r.read(65536):
                if not conn.armed:
                    await relay(data)
                    continue
                sent = len(answer)
                answer += data
                match = self._message_to_cut(answer)
                if match is None:
                    await relay(data)
                    continue
                # Two bytes into the JSON value (`{"`): a message that cannot be complete.
                await relay(answer[sent : match.end() + 2])
                conn.cut_in = int(match[1])
                # Let the client read and parse the half message before the connection dies,
                # so that discarding it is really the client's job.
                await asyncio.sleep(0.25)
                conn.cut_at = time.time()
                return
        except OSError:
            pass
