"""The event log: where a run's events live, so that responses can subscribe from any offset.

The interface is pull-based — `read(run_id, after, timeout)` returns whatever is there after
`after`, waiting up to `timeout` for something new — because that is what Redis Streams'
`XREAD BLOCK` offers, so a Redis backend fits without changing callers; and because a reader
that wakes with several events ready gets them all at once and writes them in one send.

A log shared by several processes (`SharedEventLog`, on Redis) also carries what replicas need
to know of each other's runs: which process still generates a run (a heartbeat), who still
follows it, and requests to cancel it. The log only stores these marks; `runs.py` decides.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ssechat.dialects.ssechat import Frames
from ssechat.errors import ApiError, NotFound
from ssechat.events import Delta, Event

Entry = tuple[int, Event]  # (seq, event); seq counts from 1 with no gaps
# What a log holds at a seq, as reads and listeners get it: an event, or a delta as its text
# alone, which a dialect renders without making a Delta of it again (`text_renderer`). (The
# in-memory log keeps them as canonical messages: see `memory._Log`.)
Item = Event | str
# Called with each item appended after a reader caught up (seq, item, message): the message is
# the item as the canonical dialect renders it, which the log made anyway to keep it. Called
# with (seq, None, b"") when the log ends. It runs inside `append`, in the producer's step: it
# must not block.
Listener = Callable[[int, Item | None, bytes], None]


class RunNotFound(NotFound):
    code = "run_not_found"


class LogEnded(RuntimeError):
    """An append to a log that has ended: a bug in one process; across replicas, a run that
    another replica ended because this one's heartbeat lapsed."""


class EventLogUnavailable(ApiError):
    """The log's server does not answer: a 503 before a stream, a retryable `error` event in
    one. Temporary: the client reconnects once the server is back."""

    code = "event_log_unavailable"
    status = 503
    retryable = True


def event_of(item: Item) -> Event:
    return Delta(item) if isinstance(item, str) else item


@dataclass(frozen=True, slots=True)
class Batch:
    """What a read found: `items[i]` is the event of seq `first + i` (from the in-memory log,
    `Frames`: the canonical dialect's messages of them)."""

    first: int
    items: Sequence[Item]
    # True when the log has ended and `items` reach its last event: nothing more will come.
    closed: bool

    @property
    def last(self) -> int:
        """The seq of the last item (the one before `first` if there are none)."""
        return self.first + len(self.items) - 1

    def then(self, more: Batch) -> Batch:
        """This batch followed by `more`, read from where it ends."""
        a, b = self.items, more.items
        items = a + b if isinstance(a, Frames) and isinstance(b, Frames) else [*a, *b]
        return Batch(self.first, items, more.closed)

    @property
    def entries(self) -> list[Entry]:
        """The items as (seq, event) pairs, every delta a `Delta`."""
        return [(seq, event_of(item)) for seq, item in enumerate(self.items, self.first)]


class EventLog(Protocol):
    async def append(self, run_id: str, event: Event) -> int:
        """Add `event` to the run's log (creating it on first use); return its seq."""
        ...

    async def read(self, run_id: str, after: int, timeout: float) -> Batch:
        """Events with seq > `after`, waiting up to `timeout` seconds if there are none yet.

        Raises `RunNotFound` for a run that never existed or whose retention has passed.
        """
        ...

    async def close(self, run_id: str) -> None:
        """Mark the log ended; it stays readable for the retention period, then goes."""
        ...

    def listen(self, run_id: str, after: int, listener: Listener) -> Callable[[], None] | None:
        """Have `listener` called with every event appended from now on, if a reader at seq
        `after` has read all there is (else, or if the log has ended, None: read first).
        Returns the function that stops it. A backend that cannot push returns None always:
        its readers read."""
        ...

    async def aclose(self) -> None:
        """Release the backend's resources."""
        ...


@runtime_checkable
class LocalEventLog(EventLog, Protocol):
    """An event log in this process's memory: `add` logs at once, never suspending, so a run
    appends a token without a coroutine, and a cancel can never land between the token being
    logged and being kept for the stored answer."""

    def add(self, run_id: str, item: Item) -> int:
        """`append`, synchronously, of an event or a delta's text; its seq."""
        ...


@runtime_checkable
class SharedEventLog(EventLog, Protocol):
    """An event log that several processes share. Marks expire by themselves: a process that
    dies stops renewing them, and that is how the others learn it is gone."""

    async def heartbeat(self, owned: Collection[str], followed: Collection[str]) -> set[str]:
        """Renew this process's marks: it generates `owned` and has subscribers to `followed`.
        Returns the runs of `owned` that another process asked to cancel."""
        ...

    async def request_cancel(self, run_id: str) -> bool:
        """Ask the process generating `run_id` to cancel it; False if the run is not open."""
        ...

    async def followed_elsewhere(self, run_id: str) -> bool:
        """Whether another process has renewed a subscriber mark for `run_id` lately."""
        ...

    async def orphans(self, run_ids: Collection[str]) -> Mapping[str, bool]:
        """Of `run_ids`, those no process generates any more although their log has not
        ended, each mapped to whether its log still exists (False: retention dropped it)."""
        ...

    async def abandon(self, run_id: str, event: Event) -> bool:
        """End the log of a run whose owner is gone with `event`, atomically: only if the log
        is still open and its owner still gone. True for the one caller that ended it."""
        ...

    async def ping(self) -> None:
        """Raise `EventLogUnavailable` unless the log's server answers."""
        ...
