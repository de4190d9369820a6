"""The one place that knows about sockets: an ASGI response streaming an SSE feed.

It sends the headers that keep proxies from buffering, a first `retry:`, what the feed has in
as few writes as it can, a `: ping` comment whenever the stream is idle for about `keepalive`
seconds, and it notices a client that goes away.

Two paths, the same bytes:

- **Direct**, under uvicorn's httptools protocol (what `ssechat serve` runs): uvicorn makes
  the head (ASGI `send`), which is held to leave with the body's first bytes (a replay of an
  ended run is one write, head to end). Then the stream takes the connection over, as
  uvicorn's own WebSocket upgrade does (`_Direct`: the transport's protocol from then on, and
  uvicorn's protocol, cycle and task are done); it writes the body as HTTP/1.1 chunks and
  the response's end, and gives the connection back to a new uvicorn protocol for the next
  request. A stream that has caught up *listens* to its run's log instead of waiting on it.
  An event appended is rendered in the run's own step, and one callback writes everything
  that came since: no task wakes per event, none waits while the stream is idle, and what
  arrives together leaves in one write. A stream whose last write is at least
  `write_interval` old is due at once: the streams due are written together, back to back,
  at the next turn of the event loop or as soon as WRITE_BATCH of them are (`_Writes`); a
  stream written more recently waits until its last write is that old. So a model producing
  faster than that shares writes (a write costs more than rendering an event), one that is
  slower, or an event after a pause, is written at once; on a saturated loop, back-to-back
  events wait a few turns (autocorking, `_Direct.ready`). Keepalive pings are one timer for
  all streams, not a task or a timer per stream. `StreamingApp` (the app `create_app`
  builds) goes further: the response hands its stream back to the app, which starts it
  after the framework's routing and middleware have returned, so that nothing of theirs
  stays alive with the stream.
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

# No `connection` header: whether the connection is kept is the server's to say (uvicorn
# sends `connection: close` when it will close it, and HTTP/1.1 keeps it otherwise). A fixed
# `keep-alive` contradicted that on a response to `Connection: close` or to HTTP/1.0.
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer this response
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
LAST_CHUNK = b"0\r\n\r\n"  # HTTP/1.1's chunked body ends with an empty chunk
HANDOFF = "ssechat.handoff"  # scope key: where a response leaves its stream for the app


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

    def close(self) -> None: ...


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
        body = await self.start(receive, send, to_end=True)
        await body()

    async def start(
        self, receive: Receive, send: Send, *, to_end: bool = False
    ) -> Callable[[], Awaitable[None]]:
        """Send the head of the response; return what streams its body. On the direct path
        that returns once the stream has caught up and listens, unless `to_end`: the rest is
        written by callbacks, and the caller's frames need not live as long as the stream.
        Two steps, so that a stream handed off keeps neither this object nor its frame."""
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            cycle, head = _uvicorn_cycle(send), b""
            if cycle is None:
                await send(start)
            else:  # the head leaves with the body's first bytes (`_Direct.head`)
                head = b"".join(await _send_held(cycle, send, start))
            if cycle is None or cycle.chunked_encoding is not True:
                # Not uvicorn's httptools, or HTTP/1.0 or HEAD, which uvicorn frames its own
                # way: the ASGI path.
                if cycle is not None and head:
                    cycle.transport.write(head)
                return partial(self._stream_asgi, receive, send)
            if self.preamble:
                head += _chunk(self.preamble)
            stream = _Direct(cycle.transport, self.feed, self.keepalive, self.write_interval, head)
            stream.take_over(cycle)
            return partial(stream.run, to_end)
        except BaseException:
            self.feed.close()
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
            self.feed.close()

    async def _watch_disconnect(self, receive: Receive, writer: asyncio.Task[None]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        writer.cancel()


# What the direct path uses of uvicorn's httptools request cycle and protocol; a uvicorn that
# changed them gets the ASGI path.
_CYCLE = ("transport", "flow", "disconnected", "keep_alive", "more_body", "scope", "on_response")
_PROTOCOL = ("connections", "cycle", "pipeline", "scope", "parser", "config", "server_state",
             "app_state", "on_response_complete", "connection_made", "data_received")  # fmt: skip


def _uvicorn_cycle(send: Send) -> Any:
    """The request cycle of uvicorn's httptools protocol behind `send`, if that is what it
    is (its `send` unwrapped by any middleware): its connection can be taken over."""
    cycle = getattr(send, "__self__", None)
    if type(cycle).__module__ != "uvicorn.protocols.http.httptools_impl":
        return None
    protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
    if all(hasattr(cycle, n) for n in _CYCLE) and all(hasattr(protocol, n) for n in _PROTOCOL):
        return cycle
    return None


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Held(list[bytes]):
    """Stands in for uvicorn's transport while it writes a message of ours: what it writes is
    kept, to leave with our own bytes in one write (`_send_held`)."""

    def write(self, data: bytes) -> None:
        self.append(data)


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


class _Server:
    """What a stream needs of the uvicorn server whose connection it took: a new protocol to
    give the connection back to, made as uvicorn makes one for its WebSocket upgrade."""

    __slots__ = ("__weakref__", "app_state", "config", "kind", "server_state")

    _all: ClassVar[weakref.WeakKeyDictionary[Any, _Server]] = weakref.WeakKeyDictionary()

    def __init__(self, protocol: Any) -> None:
        self.kind = type(protocol)
        self.config = protocol.config
        self.server_state = protocol.server_state
        self.app_state = protocol.app_state

    @classmethod
    def of(cls, protocol: Any) -> _Server:
        server = cls._all.get(protocol.server_state)
        if server is None:
            server = cls._all[protocol.server_state] = cls(protocol)
        return server

    def protocol(self) -> Any:
        return self.kind(
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )


class _Direct(asyncio.Protocol):
    """One stream, owning its connection from its head to its end (module docstring).

    uvicorn's protocol and request cycle are dropped when it takes the connection over
    (`take_over`), and a new protocol takes it back after the response's end, for the
    connection's next request. Meanwhile the client's socket events come here: a client that
    leaves is noticed at once, and one that reads slowly (`pause_writing`) stops the stream
    listening until its socket drains. A task runs only to catch up (`_catch_up`: a replay,
    a feed that cannot push, a drained socket); a stream that has caught up listens, and is
    written by callbacks. So an idle stream is this object, its feed and the transport: no
    task, frame, request cycle or HTTP parser (docs/benchmarks.md: memory per idle stream)."""

    __slots__ = (
        "closed",
        "connections",
        "done",
        "feed",
        "flushed",
        "gone",
        "head",
        "interval",
        "keep_alive",
        "keepalive",
        "last",
        "listening",
        "loop",
        "paused",
        "received",
        "reopen",
        "scheduled",
        "task",
        "transport",
        "writes",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        feed: Feed,
        keepalive: float,
        write_interval: float,
        head: bytes,
    ) -> None:
        self.transport = transport
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
        self.listening = False
        self.closed = False  # the stream is over, and its feed closed
        self.task: asyncio.Task[None] | None = None  # catching up
        self.done: asyncio.Future[None] | None = None  # awaited by `run(to_end=True)`
        self.gone = False  # the connection is lost
        self.paused = False  # the transport's buffer is full: the client reads slowly
        self.keep_alive = True  # the connection serves another request after this one
        self.received = b""  # what the client sent meanwhile, for the next protocol
        # Who takes the connection back: a `_Server` to make a new protocol, or the protocol
        # itself; None: it is not ours.
        self.reopen: Any = None
        self.connections: set[Any] | None = None  # uvicorn's, for its shutdown

    def take_over(self, cycle: Any) -> None:
        """Become the protocol of uvicorn's connection behind `cycle`, whose response has
        started: uvicorn's part of the response is over, and its task may end."""
        if cycle.disconnected:
            self.gone = True
            return
        protocol = cycle.on_response.__self__
        if (
            protocol.cycle is cycle
            and protocol.scope is cycle.scope
            and not protocol.pipeline
            and not cycle.more_body
        ):
            # Its parser has seen nothing after this request (the usual case): a new
            # protocol takes the connection back, and this one, with its parser, its cycle and
            # their events, is dropped. Its parser refers back to it: break that cycle, as
            # uvicorn does when a connection is lost, not to leave it to the collector.
            self.reopen = _Server.of(protocol)
            protocol.parser = None
            if cycle.flow.read_paused:  # reading is how a client that leaves is noticed
                self.transport.resume_reading()
        else:  # a request pipelined behind this one: it waits in this protocol
            self.reopen = protocol
        self.keep_alive = cycle.keep_alive
        self.paused = cycle.flow.write_paused
        cycle.response_complete = True
        self.connections = protocol.connections
        self.connections.discard(protocol)
        self.connections.add(self)
        self.transport.set_protocol(self)

    async def run(self, to_end: bool = False) -> None:
        """Catch up; then, if `to_end`, wait for the stream's end."""
        await self._catch_up()
        if to_end and not self.closed:
            self.done = self.loop.create_future()
            try:
                await self.done
            except asyncio.CancelledError:
                self._abort()
                raise

    def write(self, data: bytes, head: bytes = b"") -> None:
        """`data` as one HTTP/1.1 chunk, after `head` (bytes that go before any chunk)."""
        # `head + …` with no head is the chunk itself, not a copy.
        self.transport.write(head + _chunk(data) if data else head)
        self.last = self.loop.time()

    async def _catch_up(self) -> None:
        """Write what the feed has until it has caught up (then listen), or has ended, or
        the client stops reading or leaves."""
        feed = self.feed
        self.task = asyncio.current_task()
        timeout = 0.0  # what a read may wait: only on a feed that cannot push
        try:
            while not self.gone and not self.paused:
                data, done = await feed.next(timeout)
                if done:
                    self._end(data)
                    return
                if timeout and not data:
                    data = PING  # a quiet `keepalive`
                if self.head or data:  # the head is written before the stream listens
                    self.write(data, self.head)
                    self.head = b""
                timeout = 0.0
                if data or self.paused:
                    continue  # there may be more: read on before listening
                if self._listen():
                    return
                timeout = self.keepalive  # a feed that cannot push: wait on its reads
        except Exception as exc:  # as the loop would report a callback's: this stream alone
            self._abort()
            self.loop.call_exception_handler({"message": "could not stream", "exception": exc})
            return
        except BaseException:
            self._abort()
            raise
        finally:
            self.task = None
        if self.gone:
            self._close()
        # Else paused: `resume_writing` catches up.

    def _listen(self) -> bool:
        if not self.feed.listen(self.ready):
            return False
        self.listening = True
        _Pinger.of(self.loop, self.keepalive).add(self)
        return True

    def _unlisten(self) -> None:
        if self.listening:
            self.listening = False
            _Pinger.of(self.loop, self.keepalive).streams.discard(self)
            self.feed.unlisten()

    def ready(self, ended: bool) -> None:
        if ended:  # never held back
            self.loop.call_soon(self.flush)
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

    def flush(self) -> None:
        """Write what came since, and the response's end if the feed has ended."""
        self.scheduled = False
        if not self.listening:
            return  # the stream has ended, or stopped listening: it catches up instead
        data, done = self.feed.take()
        if done:
            self._end(data)
        elif data:
            self.write(data)
            self.flushed = self.last

    def tick(self, now: float, idle: float) -> None:
        if now - self.last >= idle:  # a stream listening is never paused (`pause_writing`)
            self.write(PING)

    def _end(self, data: bytes) -> None:
        """Write the last of the body and the response's end, in one write after the head
        if it is still due; then give the connection back, or close it as the request (or a
        shutdown) asked."""
        if not self.gone:
            self.transport.write(self.head + (_chunk(data) if data else b"") + LAST_CHUNK)
        self._close()
        if self.gone or self.reopen is None:
            return
        if not self.keep_alive:
            self.transport.close()
            return
        transport, reopen = self.transport, self.reopen
        protocol = reopen.protocol() if isinstance(reopen, _Server) else reopen
        transport.set_protocol(protocol)
        if protocol is reopen:
            assert self.connections is not None
            self.connections.add(protocol)
        else:
            protocol.connection_made(transport)
        if self.received:
            transport.resume_reading()
        protocol.on_response_complete()  # counts the request; waits for the next one
        if self.received:
            protocol.data_received(self.received)

    def _close(self) -> None:
        """The stream is over: stop listening, and close the feed."""
        if self.closed:
            return
        self.closed = True
        self._unlisten()
        self.feed.close()
        if self.connections is not None:
            self.connections.discard(self)
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _abort(self) -> None:
        """The stream failed, or was cancelled, before its end: the client must see that
        the response is cut."""
        self._close()
        if self.reopen is not None:
            self.transport.close()

    # The connection's events, from the transport.

    def data_received(self, data: bytes) -> None:
        # A request pipelined behind this response, or the start of one: kept for the
        # protocol that takes the connection back. Nothing more is read meanwhile.
        self.received += data
        self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if self.task is None:
            self._close()
        # Else the task sees it at its next step.

    def pause_writing(self) -> None:
        self.paused = True
        self._unlisten()  # the log keeps what comes meanwhile: it is read once drained

    def resume_writing(self) -> None:
        self.paused = False
        if self.task is None and not self.listening and not self.closed:
            self.task = self.loop.create_task(self._catch_up())

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: the connection closes after this response."""
        self.keep_alive = False


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
    (a client that leaves is noticed by its stream, `_Direct.connection_lost`)."""

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
    Instead the response leaves itself in the scope and returns, and the app starts it from
    here; on the direct path the app's call (uvicorn's task for the request) then ends once
    the stream has caught up and listens. Only while no middleware has been added: middleware
    would expect to see (and may change) the response, and to last as long as it does."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.user_middleware:
            await super().__call__(scope, receive, send)
            return
        handoff: list[EventStreamResponse] = []
        scope[HANDOFF] = handoff
        await super().__call__(scope, receive, send)
        if handoff:
            body = await handoff.pop().start(receive, send)
            del handoff
            await body()
