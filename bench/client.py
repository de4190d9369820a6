"""The load generator's connection: a raw uvloop protocol reading SSE over HTTP/1.1.

No HTTP library: a keep-alive connection writes a pre-built request, finds the end of the
response head, undoes chunked framing, and counts what arrives with `bytes.count` on whole
SSE messages (C speed, a handful of Python operations per chunk), so that the client is not
what limits a server. In stamp mode it also subtracts every `delta`'s stamp from the arrival
time (`time.monotonic_ns()`, system-wide, the clock the servers stamp with).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import cast

from bench import wire

_TAIL = 16  # longer than every pattern counted
_PARTIAL = 256  # longer than a stamp's `data:` line


class Totals:
    """What every connection of one load generator has received (sampled for windows)."""

    __slots__ = ("deltas", "latencies", "recording")

    def __init__(self) -> None:
        self.deltas = 0
        self.latencies: list[int] = []  # ns, while `recording`
        self.recording = False


@dataclass(slots=True)
class Response:
    sent: int  # monotonic ns when the request was written
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    first_byte: int = 0
    first_delta: int = 0
    done: int = 0
    deltas: int = 0
    messages: int = 0  # messages with data (any event type), if counted
    pings: int = 0  # if counted


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one response at a time."""

    def __init__(self, totals: Totals, *, stamps: bool = False, detail: bool = False) -> None:
        self.totals = totals
        self.stamps = stamps  # collect latencies from stamps
        self.detail = detail  # count every message and ping, not only deltas
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        # Of the current request: its response head has come, its first event has come.
        self.head: asyncio.Future[None] = self.closed
        self.first_event: asyncio.Future[None] = self.closed
        self._head = b""
        self._in_head = True
        self._line = b""  # an unfinished chunk-size line
        self._skip = 0  # bytes of the current chunk (and its CRLF) still to come
        self._last = False  # the zero-size chunk was seen: its CRLF ends the response
        self._fixed = -1  # content-length body bytes left, or -1 when chunked
        self._carry = b""  # the previous read's last bytes (matches across reads)
        self._partial = b""  # stamp mode: bytes after the last complete `data:` object

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        r = self.response
        if r is None:
            return
        if not r.first_byte:
            r.first_byte = now
        if self._in_head:
            data = self._head + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._head = data
                return
            self._start(r, data[:end])
            data = data[end + 4 :]
            if self._fixed == 0:
                self._finish(r, now)
                return
        if self._fixed >= 0:
            self._fixed -= len(data)
            self._count(r, data, now)
            if self._fixed <= 0:
                self._finish(r, now)
            return
        self._chunks(r, data, now)

    # -- requests ----------------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[Response]:
        """Write a request; the future resolves when its whole response has arrived."""
        assert self.transport is not None
        assert self.response is None
        loop = asyncio.get_running_loop()
        self.response = Response(sent=time.monotonic_ns())
        self.waiter = loop.create_future()
        self.head, self.first_event = loop.create_future(), loop.create_future()
        self._head, self._in_head, self._carry, self._partial = b"", True, b"", b""
        self.transport.write(data)
        return self.waiter

    def send(self, data: bytes) -> Response:
        """Write a request without waiting for its end (an idle stream): the returned
        response fills in as data arrives."""
        self.request(data).add_done_callback(_ignore)
        assert self.response is not None
        return self.response

    def abort(self) -> None:
        """Close at once with a reset, leaving no TIME_WAIT behind to exhaust local ports."""
        if self.transport is None or self.transport.is_closing():
            return
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    # -- parsing -----------------------------------------------------------------------

    def _start(self, r: Response, head: bytes) -> None:
        status, *lines = head.split(b"\r\n")
        r.status = int(status.split(b" ", 2)[1])
        for line in lines:
            name, _, value = line.partition(b":")
            r.headers[name.strip().lower()] = value.strip()
        self._in_head = False
        self._head = b""
        if not self.head.done():
            self.head.set_result(None)
        chunked = r.headers.get(b"transfer-encoding", b"").lower() == b"chunked"
        self._fixed = -1 if chunked else int(r.headers.get(b"content-length", b"0"))
        self._line, self._skip, self._last = b"", 0, False

    def _chunks(self, r: Response, data: bytes, now: int) -> None:
        """Walk the chunked framing only to find the response's end (a few operations per
        chunk); what the chunks carry is counted on the raw bytes, where the framing cannot
        fake a match and no message is split by it (each server writes whole messages)."""
        self._count(r, data, now)
        if self._line:  # a chunk-size line cut by the previous read
            data, self._line = self._line + data, b""
        pos, size = self._skip, len(data)
        while pos < size:
            end = data.find(b"\r\n", pos)
            if end < 0:
                self._line, self._skip = data[pos:], 0
                return
            length = int(data[pos:end].split(b";", 1)[0], 16)
            self._last = length == 0
            pos = end + 2 + length + 2  # size line, payload, CRLF
        self._skip = pos - size
        if self._last and not self._skip:
            self._finish(r, now)

    def _count(self, r: Response, data: bytes, now: int) -> None:
        # A match may straddle two reads: count over the previous read's tail too, minus
        # what lies wholly in that tail (counted then). Patterns are shorter than the tail.
        tail = self._carry
        buf = tail + data
        self._carry = buf[-_TAIL:]
        deltas = buf.count(wire.DELTA) - tail.count(wire.DELTA)
        if self.detail:
            r.messages += buf.count(b"data:") - tail.count(b"data:")
            r.pings += buf.count(b": ping") - tail.count(b": ping")
        if deltas:
            if not r.first_delta:
                r.first_delta = now
                if not self.first_event.done():
                    self.first_event.set_result(None)
            r.deltas += deltas
            self.totals.deltas += deltas
        if self.stamps:
            self._stamps(data, now)

    def _stamps(self, data: bytes, now: int) -> None:
        buf = self._partial + data
        cut = buf.rfind(b'"}') + 2  # the end of a `data:` object: no stamp cut after it
        if cut < 2:
            self._partial = buf[-_PARTIAL:]
            return
        self._partial = buf[cut:][-_PARTIAL:]
        if self.totals.recording:
            self.totals.latencies.extend(now - int(s) for s in wire.STAMP.findall(buf, 0, cut))

    def _finish(self, r: Response, now: int) -> None:
        r.done = now
        self.response = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(r)


def _ignore(future: asyncio.Future[Response]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a dropped idle stream is counted, not raised


async def connect(
    port: int, totals: Totals, *, stamps: bool = False, detail: bool = False
) -> Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: Connection(totals, stamps=stamps, detail=detail), "127.0.0.1", port
    )
    return conn
