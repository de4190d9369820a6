"""Canonical events: the vocabulary every pipeline speaks and every dialect translates.

Each event is a frozen dataclass that knows its SSE `event:` name (`type`) and nothing about
storage or transport. They serialise with orjson (dataclasses, tuples and `datetime` natively,
so a timestamp never breaks JSON encoding as it did for the seeds) and parse back with
pydantic, so clients get the same typed values the server produced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    if type(event) is Delta:  # every token: a dataclass takes orjson eight times a str's time
        return b'{"text":%s}' % orjson.dumps(event.text)
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


# -- Helpers for pipeline authors: canonical events from plain values ---------------------


def status(stage: str, detail: str | None = None) -> Status:
    """A stage of the work, e.g. `status("retrieving")`."""
    return Status(stage, detail)


def sources(*items: Source | Mapping[str, Any]) -> Sources:
    """`sources({"id": "1", "title": "Guide", "text": "…", "score": 0.8, "uri": "…"}, …)`;
    `title`, `text` and `score` default to "", "" and 0.0."""
    return Sources(tuple(item if isinstance(item, Source) else _source(item) for item in items))


def _source(item: Mapping[str, Any]) -> Source:
    known = {"id", "title", "text", "score", "uri", "metadata"}
    extra = {k: v for k, v in item.items() if k not in known}
    return Source(
        id=str(item["id"]),
        title=str(item.get("title", "")),
        text=str(item.get("text", "")),
        score=float(item.get("score", 0.0)),
        uri=item.get("uri"),
        metadata={**item.get("metadata", {}), **extra},
    )


def delta(text: str) -> Delta:
    """The next piece of the answer (yielding a plain `str` does the same)."""
    return Delta(text)


def sql(query: str, dialect: str = "sqlite") -> Sql:
    return Sql(query, dialect)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    row_count: int | None = None,
    truncated: bool = False,
) -> Table:
    """A result preview; `row_count` is the full count (defaults to `len(rows)`)."""
    return Table(
        tuple(columns),
        tuple(tuple(r) for r in rows),
        len(rows) if row_count is None else row_count,
        truncated,
    )


def csv(url: str, rows: int, size: int) -> Csv:
    return Csv(url, rows, size)


def followups(*questions: str) -> Followups:
    return Followups(tuple(questions))


def metadata(**quality: Any) -> Metadata:
    """Quality figures for the run's `metadata` event, e.g. `metadata(grounding=0.8)`; the
    run fills in model, usage and timings itself."""
    return Metadata(model="", quality=quality)
