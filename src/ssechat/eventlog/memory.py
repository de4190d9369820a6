"""In-memory event log for a single process.

Memory is bounded by time: an ended run's events are dropped `retention` seconds after it
ends.

Waiting is what every open stream does most, so it is cheap: a reader waits on a future of
its own, listed on its run's log and resolved by the next append (one turn of the event loop,
no task, no `asyncio.wait`). Its timeout is not a timer of its own either: deadlines are
grouped in slots of `GRAIN` seconds with one timer per slot, so ten thousand idle streams
with a 15 s keepalive cost a few timers a second, and a busy stream that is woken by events
long before its deadline costs no timer at all. A read may wait up to `GRAIN` longer than
its timeout.

A reader that has caught up may instead `listen`: the append itself hands it each new event,
in the producer's step, with no reader woken at all (what a live stream on the direct path of
`transport.py` does).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from functools import partial

from ssechat.dialects.ssechat import Frames, encode, message
from ssechat.eventlog import Batch, Item, Listener, LogEnded, RunNotFound
from ssechat.events import Delta, Event

# Cap on one read so that replaying a long run to a slow client is written in slices.
MAX_BATCH = 1024
CHUNK = 64  # events per joined piece of a run's log (see `_Log`)
GRAIN = 0.05  # seconds: the resolution of read timeouts


class _Log:
    """One run's events, by seq, as the canonical dialect's messages (see `Frames`).

    Each event is rendered once, as it is added: a stream in that dialect (the default) is
    handed the message as it is, live or replayed, so a resume of a thousand events is one
    join, not a thousand renders; a stream in another dialect parses them back. The messages
    are bytes, joined CHUNK at a time: the cyclic garbage collector never visits them
    (thousands of streams keep a few hundred thousand events), and a delta takes about 49
    bytes, where its text alone, as a str, took 56 (the run keeps that too while it runs)."""

    __slots__ = ("chunks", "closed", "count", "listeners", "readers", "tail")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []  # full ones: the messages of CHUNK events each, joined
        self.tail: list[bytes] = []  # the rest, fewer than CHUNK, a message each
        self.count = 0
        self.closed = False
        # Waiting reads, made on the first: most logs never have one (a live stream listens),
        # and an empty set is 216 bytes per run.
        self.readers: set[asyncio.Future[None]] | None = None
        self.listeners: list[Listener] = []

    def add(self, data: bytes) -> None:
        tail = self.tail
        tail.append(data)
        self.count += 1
        if len(tail) == CHUNK:
            self.chunks.append(b"".join(tail))
            tail.clear()

    def slice(self, start: int, end: int) -> Frames:
        """The events at indices start..end-1 (seqs start+1..end); none if end <= start (a
        read from past the end)."""
        parts: list[bytes] = []
        chunks = self.chunks
        length = max(end - start, 0)
        while start < end:
            index, offset = divmod(start, CHUNK)
            base = index * CHUNK
            stop = min(end - base, CHUNK)
            if index < len(chunks):
                chunk = chunks[index]
                parts.append(chunk[_at(chunk, base, offset) : _at(chunk, base, stop)])
            else:
                parts.extend(self.tail[offset:stop])
            start += stop - offset
        return Frames(b"".join(parts), length)

    def wake(self) -> None:
        if self.readers:
            readers, self.readers = self.readers, None
            for reader in readers:
                if not reader.done():
                    reader.set_result(None)


def _at(chunk: bytes, base: int, offset: int) -> int:
    """Where in `chunk`, which holds the events from index `base` on, the message of the one
    `offset` events in starts (CHUNK: the chunk's end). A message starts the chunk or follows
    a blank line, and begins with its id: the seq, index + 1."""
    if offset == 0:
        return 0
    if offset == CHUNK:
        return len(chunk)
    return chunk.index(b"\n\nid: %d\n" % (base + offset + 1)) + 2


class _Deadlines:
    """Read timeouts, in slots of GRAIN seconds with one timer per slot."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: dict[int, set[asyncio.Future[None]]] = {}

    def add(
        self, loop: asyncio.AbstractEventLoop, reader: asyncio.Future[None], timeout: float
    ) -> int:
        slot = math.ceil((loop.time() + timeout) / GRAIN)
        waiting = self._slots.get(slot)
        if waiting is None:
            waiting = self._slots[slot] = set()
            loop.call_at(slot * GRAIN, self._expire, slot)
        waiting.add(reader)
        return slot

    def discard(self, slot: int, reader: asyncio.Future[None]) -> None:
        waiting = self._slots.get(slot)
        if waiting is not None:
            waiting.discard(reader)

    def _expire(self, slot: int) -> None:
        for reader in self._slots.pop(slot, ()):
            if not reader.done():
                reader.set_result(None)


def _stop_listening(listeners: list[Listener], listener: Listener) -> None:
    if listener in listeners:  # not once the log has ended (it dropped them all)
        listeners.remove(listener)


class MemoryEventLog:
    def __init__(self, retention: float = 300.0) -> None:
        self._retention = retention
        self._logs: dict[str, _Log] = {}
        self._deadlines = _Deadlines()

    async def append(self, run_id: str, event: Event) -> int:
        text = event.text if type(event) is Delta else None
        return self.add(run_id, text if type(text) is str else event)

    def add(self, run_id: str, item: Item) -> int:
        log = self._writable(run_id)
        seq = log.count + 1
        data = encode(seq, item)
        log.add(data)
        for listener in log.listeners:
            listener(seq, item, data)
        if log.readers:
            log.wake()
        return seq

    def add_message(self, run_id: str, type_: str, payload: bytes) -> int:
        """`add` of an event given as its type and `data:` payload, as a log shared by several
        processes keeps it, made into its message without being parsed: for a local copy of
        such a log, which nobody listens to (its readers read)."""
        log = self._writable(run_id)
        assert not log.listeners, "a copy of another log has readers, not listeners"
        seq = log.count + 1
        log.add(message(seq, type_, payload))
        if log.readers:
            log.wake()
        return seq

    def _writable(self, run_id: str) -> _Log:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _Log()
        if log.closed:
            raise LogEnded(f"run {run_id} has ended; its log takes no more events")
        return log

    async def read(self, run_id: str, after: int, timeout: float) -> Batch:
        log = self._logs.get(run_id)
        if log is None:
            raise RunNotFound(f"run {run_id} not found")
        if after >= log.count and not log.closed and timeout > 0:
            loop = asyncio.get_running_loop()
            reader: asyncio.Future[None] = loop.create_future()
            if log.readers is None:
                log.readers = set()
            log.readers.add(reader)
            slot = self._deadlines.add(loop, reader, timeout)
            try:
                await reader
            finally:
                if log.readers is not None:
                    log.readers.discard(reader)
                self._deadlines.discard(slot, reader)
        end = min(log.count, after + MAX_BATCH)
        start = max(after, 0)
        return Batch(start + 1, log.slice(start, end), closed=log.closed and end >= log.count)

    async def close(self, run_id: str) -> None:
        log = self._logs.get(run_id)
        if log is None or log.closed:
            return
        log.closed = True
        listeners, log.listeners = log.listeners, []
        for listener in listeners:
            listener(log.count, None, b"")
        log.wake()
        asyncio.get_running_loop().call_later(self._retention, self._logs.pop, run_id, None)

    def listen(self, run_id: str, after: int, listener: Listener) -> Callable[[], None] | None:
        log = self._logs.get(run_id)
        if log is None or log.closed or after < log.count:
            return None
        log.listeners.append(listener)
        return partial(_stop_listening, log.listeners, listener)  # a partial: half a closure

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._logs

    def discard(self, run_id: str) -> None:
        """Forget a run at once, waking its readers (their next read finds it gone): for a
        log kept as a local copy of another, when the copy can no longer be kept up."""
        log = self._logs.pop(run_id, None)
        if log is not None:
            log.wake()

    async def aclose(self) -> None:
        self._logs.clear()
