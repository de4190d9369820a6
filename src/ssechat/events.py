"""Canonical events: the vocabulary every pipeline speaks and every dialect translates.

Each event is a frozen dataclass that knows its SSE `event:` name (`type`) and nothing about
storage or transport. They serialise with orjson (dataclasses, tuples and `datetime` natively,
so a timestamp never breaks JSON encoding as it did for the seeds) and parse back with
pydantic, so clients get the same typed values the server produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import orjson
from pydantic import TypeAdapter


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Timings:
    ttft_ms: float | None = None
    total_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    text: str
    score: float
    uri: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Start:
    type: ClassVar[str] = "start"
    run_id: str
    conversation_id: str
    message_id: str
    pipeline: str
    model: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Status:
    type: ClassVar[str] = "status"
    stage: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Sources:
    type: ClassVar[str] = "sources"
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class Delta:
    type: ClassVar[str] = "delta"
    text: str


@dataclass(frozen=True, slots=True)
class Sql:
    type: ClassVar[str] = "sql"
    sql: str
    dialect: str


@dataclass(frozen=True, slots=True)
class Table:
    type: ClassVar[str] = "table"
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    row_count: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class Csv:
    type: ClassVar[str] = "csv"
    url: str
    rows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Followups:
    type: ClassVar[str] = "followups"
    questions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Metadata:
    type: ClassVar[str] = "metadata"
    model: str
    usage: Usage | None = None
    timings: Timings | None = None
    quality: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Complete:
    type: ClassVar[str] = "complete"
    message_id: str
    text: str
    finish_reason: str | None = None
    sql: str | None = None
    csv_url: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class Error:
    type: ClassVar[str] = "error"
    code: str
    message: str
    retryable: bool = False


Event = (
    Start | Status | Sources | Delta | Sql | Table | Csv | Followups | Metadata | Complete | Error
)
EVENT_TYPES: Mapping[str, type[Event]] = {
    cls.type: cls
    for cls in (
        Start,
        Status,
        Sources,
        Delta,
        Sql,
        Table,
        Csv,
        Followups,
        Metadata,
        Complete,
        Error,
    )
}
# A run's log ends with exactly one of these.
TERMINAL: tuple[type[Event], ...] = (Complete, Error)


def dumps(event: Event) -> bytes:
    """The event's `data:` payload: one JSON object, without its `type`."""
    return orjson.dumps(event)


_ADAPTERS: dict[str, TypeAdapter[Any]] = {}  # built on first use: only clients parse


def loads(type_: str, data: str | bytes) -> Event:
    """Parse an SSE message of the canonical dialect back into its event.

    Raises `KeyError` for an unknown type and pydantic's `ValidationError` for bad data.
    """
    adapter = _ADAPTERS.get(type_)
    if adapter is None:
        adapter = _ADAPTERS[type_] = TypeAdapter(EVENT_TYPES[type_])
    event: Event = adapter.validate_json(data)
    return event
