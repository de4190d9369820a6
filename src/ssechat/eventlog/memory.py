"""In-memory event log for a single process.

Memory is bounded by time: an ended run's events are dropped `retention` seconds after it
ends. Waiting readers share one future per run, resolved on the next append, so a thousand
subscribers to one run cost a thousand callbacks, not a thousand tasks or queues.
"""

from __future__ import annotations

import asyncio

from ssechat.eventlog import Batch, RunNotFound
from ssechat.events import Event

# Cap on one read so that replaying a long run to a slow client is written in slices.
MAX_BATCH = 1024


class _Log:
    __slots__ = ("closed", "events", "waiter")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self.waiter is not None:
            if not self.waiter.done():
                self.waiter.set_result(None)
            self.waiter = None


class MemoryEventLog:
    def __init__(self, retention: float = 300.0) -> None:
        self._retention = retention
        self._logs: dict[str, _Log] = {}

    async def append(self, run_id: str, event: Event) -> int:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _Log()
        if log.closed:
            raise RuntimeError(f"run {run_id} has ended; its log takes no more events")
        log.events.append(event)
        log.wake()
        return len(log.events)

    async def read(self, run_id: str, after: int, timeout: float) -> Batch:
        log = self._logs.get(run_id)
        if log is None:
            raise RunNotFound(f"run {run_id} not found")
        if after >= len(log.events) and not log.closed and timeout > 0:
            if log.waiter is None:
                log.waiter = asyncio.get_running_loop().create_future()
            # asyncio.wait on a plain future adds a callback and a timer: no task per reader.
            await asyncio.wait((log.waiter,), timeout=timeout)
        end = min(len(log.events), after + MAX_BATCH)
        entries = [(seq, log.events[seq - 1]) for seq in range(max(after, 0) + 1, end + 1)]
        return Batch(entries, closed=log.closed and end >= len(log.events))

    async def close(self, run_id: str) -> None:
        log = self._logs.get(run_id)
        if log is None or log.closed:
            return
        log.closed = True
        log.wake()
        asyncio.get_running_loop().call_later(self._retention, self._logs.pop, run_id, None)

    async def aclose(self) -> None:
        self._logs.clear()
