"""The direct path (transport._Direct): its write scheduling, and its taking over uvicorn's
connection, on a transport that records what is written.

What reaches a socket is tested against real servers (tests/integration); this drives the
scheduling alone, turn by turn of a real event loop, where a saturated loop can be made on
purpose: a callback that takes 10 ms every turn; and uvicorn's own httptools protocol, whose
connection a stream takes over and gives back, through socket events made on purpose (a
client that reads slowly, one that leaves, a request pipelined behind a stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from ssechat.transport import WRITE_BATCH, EventStreamResponse, _Direct, _Writes

TURN_S = 0.01  # how long each turn of the "saturated" loop takes


class Feed:
    """Events pushed by the test, one bytes object each."""

    def __init__(self) -> None:
        self.buffered: list[bytes] = []
        self.ended = False
        self.closed = False
        self.ready: Callable[[bool], None] | None = None

    def push(self, data: bytes) -> None:
        self.buffered.append(data)
        if self.ready is not None:
            self.ready(False)

    def end(self) -> None:
        self.ended = True
        if self.ready is not None:
            self.ready(True)

    async def next(self, timeout: float) -> tuple[bytes, bool]:
        return self.take()

    def listen(self, ready: Callable[[bool], None]) -> bool:
        if self.buffered or self.ended:
            return False
        self.ready = ready
        return True

    def take(self) -> tuple[bytes, bool]:
        data = b"".join(self.buffered)
        self.buffered.clear()
        return data, self.ended

    def unlisten(self) -> None:
        self.ready = None

    def close(self) -> None:
        self.closed = True


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


def stream() -> tuple[Feed, Transport, asyncio.Task[None]]:
    feed, transport = Feed(), Transport()
    direct = _Direct(cast(Any, transport), feed, keepalive=15.0, write_interval=0.005, head=b"")
    return feed, transport, asyncio.create_task(direct.run(to_end=True))


def events_in(write: bytes) -> int:
    return write.count(b"x")  # never a hex digit of the chunk framing


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@contextlib.contextmanager
def saturated() -> Iterator[None]:
    """Every turn of the loop takes TURN_S meanwhile, as with a thousand busy streams."""
    loop = asyncio.get_running_loop()
    busy = True

    def turn() -> None:
        time.sleep(TURN_S)
        if busy:
            loop.call_soon(turn)

    loop.call_soon(turn)
    try:
        yield
    finally:
        busy = False


async def test_a_saturated_loop_writes_several_events_at_once_and_an_idle_one_at_once() -> None:
    feed, transport, task = stream()
    await turns(2)
    with saturated():
        for _ in range(200):  # an event a turn, as each stream of a saturated server gets
            feed.push(b"x")
            await asyncio.sleep(0)
    await asyncio.sleep(0.5)  # everything held is written, and the loop is idle again
    per_write = [events_in(w) for w in transport.writes]
    assert sum(per_write) == 200  # nothing lost
    # A turn (10 ms) is twice write_interval: without corking each write would carry one
    # event. With it, writes wait for several turns' worth.
    assert len(per_write) < 200 / 3

    # Idle again: an event is written in the next turn, not held.
    transport.writes.clear()
    feed.push(b"x")
    await turns(2)
    assert [events_in(w) for w in transport.writes] == [1]

    feed.end()
    await asyncio.wait_for(task, 1)


async def test_a_paced_stream_on_a_saturated_loop_is_written_at_once() -> None:
    feed, transport, task = stream()
    await turns(2)
    with saturated():
        for _ in range(20):  # warm: the loop's lag is steady now
            feed.push(b"x")
            await asyncio.sleep(0)
        # A token every 60 ms: within the cork (8 turns of 10 ms), far from back to back.
        for i in range(5):
            await asyncio.sleep(0.06)
            written = len(transport.writes)
            feed.push(b"x")
            await turns(2)
            assert len(transport.writes) == written + 1, f"token {i} was held back"
    feed.end()
    await asyncio.wait_for(task, 1)


async def test_one_slow_turn_holds_no_write_back() -> None:
    feed, transport, task = stream()
    await turns(2)
    feed.push(b"x")
    time.sleep(0.05)  # noqa: ASYNC251  (one slow turn, a collection say, before the flush)
    await turns(2)
    assert [events_in(w) for w in transport.writes] == [1]
    await asyncio.sleep(0.02)  # a paced model's next token, after write_interval
    feed.push(b"x")
    await turns(2)
    # One lag alone is no saturation: this token goes at once, not 8 × 50 ms later.
    assert [events_in(w) for w in transport.writes] == [1, 1]
    feed.end()
    await asyncio.wait_for(task, 1)


async def test_streams_due_together_are_written_in_batches_without_waiting_for_the_turn() -> None:
    streams = [stream() for _ in range(WRITE_BATCH + 1)]
    await turns(2)
    # One turn of a busy loop: every stream gets an event, one producer's step after another.
    for feed, _transport, _task in streams:
        feed.push(b"x")
    written = [len(transport.writes) for _feed, transport, _task in streams]
    # The first WRITE_BATCH went out together as the last of them came, not a turn later;
    # the rest wait for the next turn (or the next batch), and then go too.
    assert written == [1] * WRITE_BATCH + [0]
    await turns(1)
    assert [events_in(w) for w in streams[-1][1].writes] == [1]
    for feed, _transport, task in streams:
        feed.end()
        await asyncio.wait_for(task, 1)


async def test_a_stream_that_cannot_be_written_holds_no_other_in_its_batch() -> None:
    loop = asyncio.get_running_loop()
    failures: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context["exception"]))
    streams = [stream() for _ in range(3)]
    await turns(2)

    def closed(data: bytes) -> None:
        raise RuntimeError("the handler is closed")

    streams[0][1].write = closed  # type: ignore[method-assign]
    for feed, _transport, _task in streams:
        feed.push(b"x")
    await turns(1)
    assert [len(transport.writes) for _feed, transport, _task in streams[1:]] == [1, 1]
    assert [str(f) for f in failures] == ["the handler is closed"]
    loop.set_exception_handler(None)
    for _feed, _transport, task in streams:
        task.cancel()
    await asyncio.gather(*(task for _feed, _transport, task in streams), return_exceptions=True)


async def test_held_writes_go_when_due_earliest_first_and_all_due_together() -> None:
    loop = asyncio.get_running_loop()
    writes = _Writes(loop)
    flushed: list[tuple[str, float]] = []
    still_held: list[int] = []

    class Held:
        def __init__(self, name: str) -> None:
            self.name = name

        def flush(self) -> None:
            flushed.append((self.name, loop.time()))
            still_held.append(len(writes.held))

    start = loop.time()
    due = {"late": start + 0.08, "early": start + 0.03, "early too": start + 0.03}
    for name, at in due.items():  # the later first: the earlier ones move the one timer
        writes.hold(cast(_Direct, Held(name)), at)
    await asyncio.sleep(0.055)
    assert [name for name, _ in flushed] == ["early", "early too"]
    assert still_held == [1, 1]  # both taken out before either was written: back to back
    await asyncio.sleep(0.06)
    assert [name for name, _ in flushed] == ["early", "early too", "late"]
    # None before its time (the loop's clock ticks in milliseconds).
    assert all(at >= due[name] - 0.002 for name, at in flushed)
    assert writes.timer is None
    assert not writes.held


class RecordingTransport:
    """What uvicorn's protocol (and a stream that takes its connection over) needs of a
    transport, keeping every write apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol


class Connection:
    """A client's connection to uvicorn's httptools protocol serving `app`, on a
    `RecordingTransport`: its socket events are made by hand."""

    def __init__(self, app: Any) -> None:
        from uvicorn.config import Config
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState

        self.state = ServerState()
        self.transport = RecordingTransport()
        config = Config(app, lifespan="off", http="httptools", log_level="warning")
        protocol = HttpToolsProtocol(config, self.state, {}, asyncio.get_running_loop())
        protocol.connection_made(cast(Any, self.transport))
        self.transport.protocol = protocol

    @property
    def protocol(self) -> Any:
        return self.transport.get_protocol()

    def send(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def get(self, path: str, headers: bytes = b"") -> None:
        self.send(b"GET %s HTTP/1.1\r\nHost: test\r\n%s\r\n" % (path.encode(), headers))

    async def until(self, done: Callable[[], bool]) -> None:
        for _ in range(100):
            if done():
                return
            await asyncio.sleep(0.001)
        raise AssertionError("not within 100 ms")

    def written(self) -> bytes:
        return b"".join(self.transport.writes)


def streaming_app(feed: Feed) -> Any:
    """The app `create_app` builds, in small: `/events` streams `feed`, `/next` answers."""
    from starlette.responses import PlainTextResponse

    from ssechat.transport import StreamingApp

    app = StreamingApp()
    app.get("/events")(lambda: EventStreamResponse(cast(Any, feed), keepalive=15.0))
    app.get("/next")(lambda: PlainTextResponse("next"))
    return app


async def listening() -> tuple[Feed, Connection]:
    """A connection whose GET /events stream (of a feed with nothing yet) has caught up and
    listens."""
    feed = Feed()
    connection = Connection(streaming_app(feed))
    connection.get("/events")
    await connection.until(lambda: feed.ready is not None)
    return feed, connection


async def uvicorn_writes(
    feed: Feed, *, retry_ms: int | None = 2000, request_headers: bytes = b""
) -> tuple[list[bytes], RecordingTransport]:
    """The writes uvicorn's httptools protocol makes for one GET answered by an
    `EventStreamResponse` of `feed` in a bare ASGI app (no handoff: the app's call lasts as
    long as the stream), once the response has ended (or 50 ms have passed)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = EventStreamResponse(cast(Any, feed), keepalive=15.0, retry_ms=retry_ms)
        await response(scope, receive, send)

    connection = Connection(app)
    connection.get("/events", request_headers)
    with contextlib.suppress(AssertionError):
        await connection.until(lambda: connection.written().endswith(b"0\r\n\r\n"))
    closed = connection.transport.closed
    connection.protocol.connection_lost(None)
    await asyncio.sleep(0)
    connection.transport.closed = closed
    return connection.transport.writes, connection.transport


async def test_a_replay_that_ends_the_response_is_one_write_head_to_end() -> None:
    feed = Feed()
    feed.buffered.append(b"id: 1\ndata: x\n\n")
    feed.ended = True
    (write,), transport = await uvicorn_writes(feed)
    head, _, body = write.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-type: text/event-stream" in head
    assert body == b"d\r\nretry: 2000\n\n\r\nf\r\nid: 1\ndata: x\n\n\r\n0\r\n\r\n"
    assert not transport.closed  # keep-alive: the connection waits for the next request


async def test_a_response_that_closes_its_connection_closes_it_after_its_one_write() -> None:
    feed = Feed()
    feed.buffered.append(b"data: x\n\n")
    feed.ended = True
    (write,), transport = await uvicorn_writes(feed, request_headers=b"Connection: close\r\n")
    assert write.endswith(b"9\r\ndata: x\n\n\r\n0\r\n\r\n")
    assert transport.closed


async def test_the_head_goes_with_the_first_events_or_alone_when_there_are_none() -> None:
    ready = Feed()
    ready.buffered.append(b"data: x\n\n")
    (write,), _ = await uvicorn_writes(ready, retry_ms=None)
    assert write.startswith(b"HTTP/1.1 200 OK\r\n")
    assert write.endswith(b"\r\n\r\n9\r\ndata: x\n\n\r\n")

    live = Feed()  # nothing yet: the client must see the head at once, not with a first event
    (write,), _ = await uvicorn_writes(live, retry_ms=None)
    assert write.startswith(b"HTTP/1.1 200 OK\r\n")
    assert write.endswith(b"transfer-encoding: chunked\r\n\r\n")


async def test_a_stream_holds_no_task_and_gives_its_connection_to_a_new_protocol() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    feed = Feed()
    connection = Connection(streaming_app(feed))
    first = connection.protocol
    connection.get("/events")
    await connection.until(lambda: feed.ready is not None)  # caught up: it listens
    # The stream is the connection's protocol now, in uvicorn's place among its
    # connections (which its shutdown goes through); the request's task has ended.
    stream = connection.protocol
    assert isinstance(stream, _Direct)
    assert list(connection.state.connections) == [cast(Any, stream)]
    await turns(2)
    assert not connection.state.tasks
    feed.push(b"x")
    feed.end()
    await connection.until(lambda: connection.written().endswith(b"0\r\n\r\n"))
    assert feed.closed
    assert b"1\r\nx\r\n0\r\n\r\n" in connection.written()
    # Keep-alive: a new uvicorn protocol waits for the connection's next request.
    again = connection.protocol
    assert type(again) is HttpToolsProtocol
    assert again is not first
    assert list(connection.state.connections) == [again]
    assert connection.state.total_requests == 1
    connection.transport.writes.clear()
    connection.get("/next")
    await connection.until(lambda: connection.written().endswith(b"next"))
    assert connection.written().startswith(b"HTTP/1.1 200 OK\r\n")
    assert not connection.transport.closed


async def test_a_request_sent_during_a_stream_is_answered_after_its_end() -> None:
    feed, connection = await listening()
    connection.get("/next")  # pipelined behind the stream: it waits, unread meanwhile
    feed.push(b"x")
    await turns(2)
    assert b"next" not in connection.written()
    assert not connection.transport.reading
    feed.end()
    await connection.until(lambda: connection.written().endswith(b"next"))
    body = connection.written()
    assert body.index(b"0\r\n\r\n") < body.index(b"HTTP/1.1 200 OK\r\ncontent-length: 4")
    assert connection.transport.reading


async def test_a_request_pipelined_in_the_same_packet_is_answered_after_the_stream() -> None:
    feed = Feed()
    connection = Connection(streaming_app(feed))
    first = connection.protocol
    # uvicorn's parser has read the second request already: its protocol keeps it, and
    # takes the connection back at the stream's end.
    connection.send(
        b"GET /events HTTP/1.1\r\nHost: test\r\n\r\nGET /next HTTP/1.1\r\nHost: test\r\n\r\n"
    )
    await connection.until(lambda: feed.ready is not None)
    assert isinstance(connection.protocol, _Direct)
    feed.end()
    await connection.until(lambda: connection.written().endswith(b"next"))
    assert connection.protocol is first
    assert b"0\r\n\r\n" in connection.written()


async def test_a_client_that_reads_slowly_gets_every_event_once_its_socket_drains() -> None:
    feed, connection = await listening()
    stream = connection.protocol
    written = len(connection.transport.writes)
    stream.pause_writing()  # the transport's buffer is full
    assert feed.ready is None  # no longer listening: what comes waits in the feed (the log)
    for _ in range(5):
        feed.push(b"x")
    await turns(3)
    assert len(connection.transport.writes) == written
    stream.resume_writing()
    await connection.until(lambda: feed.ready is not None)  # caught up, listening again
    assert events_in(b"".join(connection.transport.writes[written:])) == 5
    feed.push(b"x")
    await turns(2)
    assert events_in(b"".join(connection.transport.writes[written:])) == 6
    feed.end()
    await connection.until(lambda: feed.closed)


async def test_a_client_that_leaves_an_idle_stream_closes_its_feed_at_once() -> None:
    feed, connection = await listening()
    connection.protocol.connection_lost(None)
    assert feed.closed  # in the same step: the run learns it has one subscriber fewer
    assert feed.ready is None
    assert not connection.state.connections


async def test_a_graceful_shutdown_closes_the_connection_after_the_streams_end() -> None:
    feed, connection = await listening()
    for open_connection in list(connection.state.connections):  # as uvicorn's shutdown does
        open_connection.shutdown()
    assert not connection.transport.closed  # the stream goes on to its end
    feed.push(b"x")
    feed.end()
    await connection.until(lambda: connection.transport.closed)
    assert connection.written().endswith(b"1\r\nx\r\n0\r\n\r\n")


async def test_a_stream_whose_head_fills_the_socket_waits_for_it_to_drain() -> None:
    feed = Feed()
    connection = Connection(streaming_app(feed))
    transport = connection.transport
    write = transport.write

    def fills(data: bytes) -> None:  # the head's write takes the buffer past its high mark
        write(data)
        if data.startswith(b"HTTP/1.1 200"):
            transport.protocol.pause_writing()

    transport.write = fills  # type: ignore[method-assign]
    connection.get("/events")
    await connection.until(lambda: connection.written().startswith(b"HTTP/1.1 200"))
    await turns(3)
    assert feed.ready is None  # not listening: nothing more goes into a full buffer
    feed.push(b"x")
    await turns(3)
    assert events_in(connection.written().partition(b"\r\n\r\n")[2]) == 0
    transport.protocol.resume_writing()
    await connection.until(lambda: feed.ready is not None)
    assert events_in(connection.written().partition(b"\r\n\r\n")[2]) == 1
    feed.end()
    await connection.until(lambda: feed.closed)
