"""The direct path's write scheduling (transport._Direct), on a fake uvicorn cycle.

What reaches a socket is tested against real servers (tests/integration); this drives the
scheduling alone, turn by turn of a real event loop, where a saturated loop can be made on
purpose: a callback that takes 10 ms every turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

from ssechat.transport import WRITE_BATCH, EventStreamResponse, _Direct, _Writes

TURN_S = 0.01  # how long each turn of the "saturated" loop takes


class Feed:
    """Events pushed by the test, one bytes object each."""

    def __init__(self) -> None:
        self.buffered: list[bytes] = []
        self.ended = False
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

    async def aclose(self) -> None:
        return None


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


def stream() -> tuple[Feed, Transport, asyncio.Task[None]]:
    feed, transport = Feed(), Transport()
    cycle = SimpleNamespace(
        transport=transport, flow=SimpleNamespace(write_paused=False), disconnected=False
    )

    async def send(message: dict[str, Any]) -> None:
        transport.writes.append(message["body"])

    direct = _Direct(cycle, send, feed, keepalive=15.0, write_interval=0.005, head=b"")
    return feed, transport, asyncio.create_task(direct.run())


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
    """What uvicorn's protocol needs of a transport, keeping every write apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

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

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def uvicorn_writes(
    feed: Feed, *, retry_ms: int | None = 2000, request_headers: bytes = b""
) -> tuple[list[bytes], RecordingTransport]:
    """The writes uvicorn's httptools protocol makes for one GET answered by an
    `EventStreamResponse` of `feed`, once the response has ended (or 50 ms have passed)."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = EventStreamResponse(cast(Any, feed), keepalive=15.0, retry_ms=retry_ms)
        await response(scope, receive, send)

    protocol = HttpToolsProtocol(
        Config(app, lifespan="off", http="httptools"), ServerState(), {}, asyncio.get_running_loop()
    )
    transport = RecordingTransport()
    protocol.connection_made(cast(Any, transport))
    protocol.data_received(b"GET /events HTTP/1.1\r\nHost: test\r\n%s\r\n" % request_headers)
    for _ in range(50):
        await asyncio.sleep(0.001)
        if transport.writes and transport.writes[-1].endswith(b"0\r\n\r\n"):
            break
    closed = transport.closed
    protocol.connection_lost(None)
    await asyncio.sleep(0)
    transport.closed = closed
    return transport.writes, transport


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
