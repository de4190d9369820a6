"""The event log: where a run's events live, so that responses can subscribe from any offset.

The interface is pull-based — `read(run_id, after, timeout)` returns whatever is there after
`after`, waiting up to `timeout` for something new — because that is what Redis Streams'
`XREAD BLOCK` offers, so a Redis backend fits without changing callers; and because a reader
that wakes with several events ready gets them all at once and writes them in one send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ssechat.errors import NotFound
from ssechat.events import Event

Entry = tuple[int, Event]  # (seq, event); seq counts from 1 with no gaps


class RunNotFound(NotFound):
    code = "run_not_found"


@dataclass(frozen=True, slots=True)
class Batch:
    entries: Sequence[Entry]
    # True when the log has ended and `entries` reach its last event: nothing more will come.
    closed: bool


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

    async def aclose(self) -> None:
        """Release the backend's resources."""
        ...
