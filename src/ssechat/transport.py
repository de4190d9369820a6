"""The one place that knows about sockets: an ASGI response streaming an SSE feed.

It sends the headers that keep proxies from buffering, a first `retry:`, what the feed has in
as few writes as it can, a `: ping` comment whenever the stream is idle for about `keepalive`
seconds, and it notices a client that goes away.

Two paths, the same bytes:

- **Direct**, under uvicorn's httptools protocol (what `ssechat serve` runs): uvicorn makes
  the head (ASGI `send`), which is held to leave with the body's first bytes (a replay of an
  ended run is one write, head to end); the body is written to uvicorn's transport as
  HTTP/1.1 chunks; and a stream that has caught up *listens* to its run's log instead of
  waiting on it. An event appended is rendered in the run's own step, and one callback
  writes everything that came since: no task wakes per event, and what arrives together
  leaves in one write. A stream whose last write is at least `write_interval` old is due at
  once: the streams due are written together, back to back, at the next turn of the event
  loop or as soon as WRITE_BATCH of them are (`_Writes`); a stream written more recently
  waits until its last write is that old. So a model producing faster than that shares
  writes (a write costs more than rendering an event), one that is slower, or an event after
  a pause, is written at once; on a saturated loop, back-to-back events wait a few turns
  (autocorking, `_Direct.ready`). Keepalive pings and the check for a client that left are
  one timer for all streams, not a task or a timer per stream. `StreamingApp` (the app
  `create_app` builds) goes further: the response hands its stream back to the app, which
  streams it after the framework's routing and middleware have returned, so an idle stream
  keeps four frames alive, not twenty.
- **ASGI**, under any other server or behind someone's middleware: each batch the feed
  produces is one `send`; uvicorn silently drops writes to a closed socket, so a small task
  waits on `receive()` for `http.disconnect` and cancels the writer.
"""

from __future__ import annotations

import asyncio
import heapq
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, ClassVar, Protocol

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ssechat import sse

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer this response
    (b"connection", b"keep-alive"),
]
PING = sse.encode(comment="ping")
# On a saturated loop a stream whose events come back to back has its writes held for
# CORK_TURNS times the loop's lag, at most MAX_HOLD seconds (`_Direct.ready`): a quarter of a
# second is still text streaming to a reader.
CORK_TURNS = 8
MAX_HOLD = 0.25
# Streams due for a write are written together, back to back, at the next turn, or as soon as
# this many are due (`_Writes`): a turn of a busy loop can take milliseconds.
WRITE_BATCH = 16
END = {"type": "http.response.body", "body": b"", "more_body": False}
HANDOFF = "ssechat.handoff"  # scope key: where a response leaves its stream for the app
# The ASGI spec's keys but the request's headers, once the response has started (uvicorn reads
# the method once more, at the end).
KEPT_SCOPE = frozenset(
    ("type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "query_string",
     "root_path", "client", "server", "state", "extensions")
)  # fmt: skip


class Feed(Protocol):
    async def next(self, timeout: float) -> tuple[bytes, bool]:
        """The next bytes to send (b"" if nothing came within `timeout`) and whether the
        stream ends after them."""
        ...

    def listen(self, ready: Callable[[bool], None]) -> bool:
        """Call `ready(ended)` whenever there is something to `take`, from now on (`ended`:
        the stream ends after it); False if `next` has something already (or the feed
        cannot push): read it first."""
        ...

    def take(self) -> tuple[bytes, bool]:
        """What came while listening, and whether the stream ends after it."""
        ...

    def unlisten(self) -> None: ...

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
        write_interval: float = 0.0,
        retry_ms: int | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        status_code: int = 200,  # FastAPI's OpenAPI reads the default status from here
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.feed = feed
        self.keepalive = keepalive
        self.write_interval = write_interval
        self.preamble = sse.encode(retry=retry_ms) if retry_ms is not None else b""
        self.raw_headers = HEADERS + (headers or [])
        self.gone = False  # the client has left (a flag: an asyncio.Event costs ~1 KiB)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handoff = scope.get(HANDOFF)
        if handoff is not None and not handoff:
            handoff.append(self)  # StreamingApp streams it once the routing has returned
            return
        body = await self.start(scope, receive, send)
        await body()

    async def start(
        self, scope: Scope, receive: Receive, send: Send, *, handed_off: bool = False
    ) -> Callable[[], Awaitable[None]]:
        """Send the head of the response; return what streams its body to the end. Two
        steps, so that a stream handed off keeps neither this object nor its frame alive."""
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            cycle, head = _uvicorn_cycle(send), b""
            if cycle is None:
                await send(start)
            else:  # the head leaves with the body's first bytes (`_Direct.head`)
                head = b"".join(await _send_held(cycle, send, start))
            if handed_off:
                # What routing left in the scope (the app, the route, FastAPI's exit stacks)
                # and the request's headers would live as long as the stream. Refilled, not
                # deleted from: a dict never shrinks, and the grown one is 368 bytes more.
                kept = {key: value for key, value in scope.items() if key in KEPT_SCOPE}
                scope.clear()
                scope.update(kept)
            if cycle is None or cycle.chunked_encoding is not True:
                # Not uvicorn's httptools, or HTTP/1.0 or HEAD, which uvicorn frames its own
                # way: the ASGI path.
                if cycle is not None and head:
                    cycle.transport.write(head)
                return partial(self._stream_asgi, receive, send)
            if self.preamble:
                head += _chunk(self.preamble)
            return _Direct(cycle, send, self.feed, self.keepalive, self.write_interval, head).run
        except BaseException:
            await self.feed.aclose()
            raise

    async def _stream_asgi(self, receive: Receive, send: Send) -> None:
        writer = asyncio.current_task()
        assert writer is not None
        watcher = asyncio.create_task(self._watch_disconnect(receive, writer))
        try:
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


def _uvicorn_cycle(send: Send) -> Any:
    """The request cycle of uvicorn's httptools protocol behind `send`, if that is what it
    is (its `send` unwrapped by any middleware): its transport can be written to directly."""
    cycle = getattr(send, "__self__", None)
    if type(cycle).__module__ != "uvicorn.protocols.http.httptools_impl":
        return None
    # What the direct path uses of it; a uvicorn that changed them gets the ASGI path.
    if all(hasattr(cycle, name) for name in ("transport", "flow", "disconnected")):
        return cycle
    return None


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Held(list[bytes]):
    """Stands in for uvicorn's transport while it writes a message of ours: what it writes is
    kept, to leave with our own bytes in one write (`_send_held`)."""

    closing = False

    def write(self, data: bytes) -> None:
        self.append(data)

    def close(self) -> None:
        self.closing = True


async def _send_held(cycle: Any, send: Send, message: Message) -> _Held:
    """Send `message` through uvicorn, which must see it (the response's state is its own),
    keeping what it would write instead of writing it."""
    held = _Held()
    transport, cycle.transport = cycle.transport, held
    try:
        await send(message)
    finally:
        cycle.transport = transport
    return held


class _Direct:
    """One stream written straight to uvicorn's transport (module docstring)."""

    __slots__ = (
        "cycle",
        "feed",
        "flushed",
        "head",
        "interval",
        "keepalive",
        "last",
        "loop",
        "scheduled",
        "send",
        "waiter",
        "writes",
    )

    def __init__(
        self,
        cycle: Any,
        send: Send,
        feed: Feed,
        keepalive: float,
        write_interval: float,
        head: bytes,
    ) -> None:
        self.cycle = cycle
        self.send = send  # for the response's end, which uvicorn must see
        self.feed = feed
        self.keepalive = keepalive
        self.interval = write_interval
        # The response's head (and the `retry:` chunk), not written yet: it leaves with the
        # first of the body, one write (a syscall, and a wakeup of the client) fewer.
        self.head = head
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()  # of the last write: pings go to streams idle since
        self.scheduled = False  # a flush is due (with the loop's next writes, or at a time)
        self.flushed = -write_interval  # when a flush last wrote: a burst's first goes at once
        self.writes = _Writes.of(self.loop)
        self.waiter: asyncio.Future[None] | None = None  # set while listening

    def write(self, data: bytes, head: bytes = b"") -> None:
        """`data` as one HTTP/1.1 chunk, after `head` (bytes that go before any chunk)."""
        # `head + …` with no head is the chunk itself, not a copy.
        self.cycle.transport.write(head + _chunk(data) if data else head)
        self.last = self.loop.time()

    async def run(self) -> None:
        """Stream until the feed ends (then end the response) or the client leaves; close
        the feed either way. One frame: an idle stream keeps it alive."""
        cycle, feed, flow = self.cycle, self.feed, self.cycle.flow
        head, self.head = self.head, b""
        pinger = _Pinger.of(self.loop, self.keepalive)
        timeout = 0.0  # what a read may wait: only on a feed that cannot push
        try:
            while not cycle.disconnected:
                if flow.write_paused:  # a slow client: wait for its socket to drain, read on
                    await flow.drain()
                    continue
                data, done = await feed.next(timeout)
                if done:  # the last of it and the response's end in one write
                    await self.end(head, data)
                    return
                if timeout and not data:
                    data = PING  # a quiet `keepalive` (a client gone is noticed next turn)
                if head or data:
                    self.write(data, head)
                    head = b""
                timeout = 0.0
                if data:
                    continue  # there may be more: read on before listening
                if not feed.listen(self.ready):
                    timeout = self.keepalive  # a feed that cannot push: wait on its reads
                    continue
                self.waiter = self.loop.create_future()
                pinger.add(self)
                try:
                    await self.waiter
                finally:
                    pinger.streams.discard(self)
                    feed.unlisten()
                    self.waiter = None
        finally:
            await feed.aclose()

    async def end(self, head: bytes, data: bytes) -> None:
        """Send the last of the body, and the response's end that uvicorn writes (it must
        see it), in one write after `head`."""
        cycle = self.cycle
        held = await _send_held(cycle, self.send, {**END, "body": data})
        if (head or held) and not cycle.disconnected:
            cycle.transport.write(b"".join([head, *held]))
        if held.closing:  # a response that closes its connection, after its last bytes
            cycle.transport.close()

    def ready(self, ended: bool) -> None:
        if ended:  # never held back; the task sends it, with the response's end
            self.loop.call_soon(self.wake)
        elif not self.scheduled:
            self.scheduled = True
            now, steady = self.loop.time(), self.writes.steady
            # Autocorking. A loop whose lag holds steady is saturated, and a stream whose
            # event comes within two lags of its last write gets about one an event a turn: a
            # write (a syscall that runs the receiver's TCP too, on loopback) then costs more
            # than several events, so this one waits for a few turns' worth (1,000 saturated
            # streams: a write per about four events, not per event). A paced stream, whose
            # events come further apart, and any stream on an idle loop, are written at once.
            wait = self.interval
            if now - self.flushed < 2 * steady:
                wait = max(wait, min(CORK_TURNS * steady, MAX_HOLD))
            due = self.flushed + wait
            if due <= now:
                self.writes.add(self)
            else:
                self.writes.hold(self, due)

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def flush(self) -> None:
        """Write what came since; wake the task when it has something to do."""
        self.scheduled = False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # the task is taking over: `next` returns what is left
        if self.cycle.disconnected:
            waiter.set_result(None)
            return
        data, done = self.feed.take()
        if data:
            self.write(data)
            self.flushed = self.last
        if done or self.cycle.flow.write_paused:
            waiter.set_result(None)

    def tick(self, now: float, idle: float) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.cycle.disconnected:
            waiter.set_result(None)
        elif now - self.last >= idle and not self.cycle.flow.write_paused:
            self.write(PING)


class _Writes:
    """The streams of one loop due for a write, written together: at the loop's next turn,
    or at once when WRITE_BATCH are due; and the writes held back (`hold`), written together
    when their time comes, by one timer for all of them.

    Writes back to back find the receiving side awake; a write made alone, in the middle of
    a turn, wakes it (on loopback: 4.8% → 11.3% of the server's CPU spent on wakeups when
    each stream wrote in its producer's step; docs/benchmarks.md). Waiting for the next turn
    costs an event the rest of this one, milliseconds on a busy loop: a batch bounds that.
    A timer per held write cost a timer handle and a libuv timer each, thousands a second
    on a saturated loop; the held ones wait in a heap instead, under the earliest's timer.

    It also keeps the loop's lag, which `_Direct.ready` corks by: how late its turn callback
    and held writes run is how long turns take now; `steady`, the smaller of the last two, is
    a lag that held (one slow turn alone, a collection say, is no saturation)."""

    __slots__ = (
        "due",
        "held",
        "holds",
        "lag",
        "loop",
        "scheduled",
        "steady",
        "streams",
        "timer",
    )

    _all: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writes]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.streams: list[_Direct] = []
        self.scheduled = False
        self.due = 0.0  # when the turn callback was asked for
        self.lag = 0.0
        self.steady = 0.0
        # Held writes: (due, order of holding, stream), earliest first; the order breaks ties.
        self.held: list[tuple[float, int, _Direct]] = []
        self.holds = 0
        self.timer: asyncio.TimerHandle | None = None  # set for the earliest, while any is

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Writes:
        writes = cls._all.get(loop)
        if writes is None:
            writes = cls._all[loop] = cls(loop)
        return writes

    def add(self, stream: _Direct) -> None:
        self.streams.append(stream)
        if not self.scheduled:
            self.scheduled = True
            self.due = self.loop.time()
            self.loop.call_soon(self._turn)
        elif len(self.streams) >= WRITE_BATCH:
            self._write()

    def hold(self, stream: _Direct, due: float) -> None:
        """Write `stream` at loop time `due`, with every other held write due by then."""
        if self.timer is None or due < self.held[0][0]:  # the timer is for the earliest
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(due, self._release)
        heapq.heappush(self.held, (due, self.holds, stream))
        self.holds += 1

    def note(self, lag: float) -> None:
        self.lag, self.steady = lag, min(lag, self.lag)

    def _turn(self) -> None:
        self.scheduled = False
        self.note(self.loop.time() - self.due)
        self._write()

    def _release(self) -> None:
        """The earliest held writes' time has come; how late it came says how long turns
        take now."""
        self.timer = None
        held, now = self.held, self.loop.time()
        self.note(now - held[0][0])
        # The loop's clock and timers tick in milliseconds: a timer may run a little before
        # its time by `now`. What it was set for goes anyway, and what is due by then with it.
        until = max(now, held[0][0])
        due = []
        while held and held[0][0] <= until:
            due.append(heapq.heappop(held)[2])
        if held:
            self.timer = self.loop.call_at(held[0][0], self._release)
        self._flush(due)

    def _write(self) -> None:
        streams, self.streams = self.streams, []
        self._flush(streams)

    def _flush(self, streams: list[_Direct]) -> None:
        for stream in streams:
            try:
                stream.flush()
            except Exception as exc:  # as the loop would for a callback of its own: one
                # stream's failure (a transport closed under it) holds no other back
                self.loop.call_exception_handler(
                    {"message": "could not write to a stream", "exception": exc}
                )


class _Pinger:
    """Keepalive for every listening stream of one loop and interval: one timer, every
    quarter interval while any stream listens, pings the streams idle for about an interval
    and wakes those whose client has left."""

    _all: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Pinger]]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.tick = max(interval / 4, 0.01)
        self.idle = interval - self.tick / 2  # pings come every interval ± tick/2
        self.streams: set[_Direct] = set()
        self.timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, interval: float) -> _Pinger:
        pingers = cls._all.setdefault(loop, {})
        pinger = pingers.get(interval)
        if pinger is None:
            pinger = pingers[interval] = cls(loop, interval)
        return pinger

    def add(self, stream: _Direct) -> None:
        self.streams.add(stream)
        if self.timer is None:
            self.timer = self.loop.call_later(self.tick, self._run)

    def _run(self) -> None:
        now = self.loop.time()
        for stream in list(self.streams):
            stream.tick(now, self.idle)
        self.timer = self.loop.call_later(self.tick, self._run) if self.streams else None


class StreamingApp(FastAPI):
    """A FastAPI app whose `EventStreamResponse`s stream after its routing has returned.

    A route's response is called deep inside Starlette's middleware and FastAPI's routing;
    streaming there keeps every one of their frames alive for as long as the stream lasts.
    Instead the response leaves itself in the scope and returns, and the app streams it from
    here. Only while no middleware has been added: middleware would expect to see (and may
    change) the response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.user_middleware:
            await super().__call__(scope, receive, send)
            return
        handoff: list[EventStreamResponse] = []
        scope[HANDOFF] = handoff
        await super().__call__(scope, receive, send)
        if handoff:
            body = await handoff.pop().start(scope, receive, send, handed_off=True)
            del handoff
            await body()
