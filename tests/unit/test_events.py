"""Canonical events (ssechat.events): JSON round trips and the canonical dialect's wire bytes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssechat.dialects.ssechat import CanonicalRenderer, Frames
from ssechat.dialects.ssechat import encode as encode_item
from ssechat.events import (
    EVENT_TYPES,
    Complete,
    Csv,
    Delta,
    Error,
    Event,
    Followups,
    Metadata,
    Source,
    Sources,
    Sql,
    Start,
    Status,
    Table,
    Timings,
    Usage,
    dumps,
    loads,
)
from ssechat.sse import decode, encode

# RFC 3339 date-time: full date, "T", full time with optional fraction, and an offset.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

PLUS_TWO = timezone(timedelta(hours=2))

SAMPLES: list[Event] = [
    Start(
        run_id="run_1",
        conversation_id="conv_1",
        message_id="msg_1",
        pipeline="chat",
        model="scripted",
        created_at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=PLUS_TWO),
    ),
    Status("retrieving", detail="searching 3 indexes"),
    Status("generating"),
    Sources(
        (
            Source("doc-1", "Paris", "Paris is the capital\nof France.", 0.92),
            Source(
                "doc-2",
                "Lyon",
                "Lyon is a city.",
                0.5,
                uri="https://example.org/lyon",
                metadata={"page": 3, "tags": ["city", "france"], "nested": {"a": None}},
            ),
        )
    ),
    Delta("Hello, wörld 😀"),
    Sql("SELECT name\nFROM cities\nWHERE pop > 1e6", dialect="postgres"),
    Table(
        columns=("name", "population", "area", "capital", "notes"),
        rows=(("Paris", 2_100_000, 105.4, True, None), ("Lyon", 520_000, 47.87, False, "ok")),
        row_count=2,
        truncated=False,
    ),
    Csv(url="/files/result.csv", rows=2, bytes=64),
    Followups(("What about Lyon?", "And Marseille?")),
    Metadata(
        "scripted",
        usage=Usage(prompt_tokens=12, completion_tokens=7),
        timings=Timings(ttft_ms=12.5, total_ms=80.25),
        quality={"faithfulness": 0.9, "checks": ["grounded"]},
    ),
    Metadata("scripted"),
    Complete(
        "msg_1",
        "The capital of France is Paris.\n",
        finish_reason="stop",
        sql="SELECT 1",
        csv_url="/files/result.csv",
        usage=Usage(3, 7),
    ),
    Complete("msg_2", ""),
    Error("model_error", "the model failed\nhalfway", retryable=True),
]


def test_the_samples_cover_every_event_type() -> None:
    assert {e.type for e in SAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_every_event_round_trips_through_dumps_and_loads(event: Event) -> None:
    back = loads(event.type, dumps(event))
    assert type(back) is type(event)
    assert back == event


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_loads_accepts_the_payload_as_text_as_well_as_bytes(event: Event) -> None:
    assert loads(event.type, dumps(event).decode()) == event


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_the_payload_is_a_json_object_without_the_type(event: Event) -> None:
    payload = orjson.loads(dumps(event))
    assert isinstance(payload, dict)
    assert "type" not in payload


def test_nested_values_come_back_typed() -> None:
    full = next(e for e in SAMPLES if isinstance(e, Metadata) and e.usage is not None)
    metadata = loads("metadata", dumps(full))
    assert isinstance(metadata, Metadata)
    assert isinstance(metadata.usage, Usage)
    assert isinstance(metadata.timings, Timings)
    sources = loads("sources", dumps(next(e for e in SAMPLES if isinstance(e, Sources))))
    assert isinstance(sources, Sources)
    assert all(isinstance(s, Source) for s in sources.sources)


def test_table_rows_keep_each_cell_type() -> None:
    table = next(e for e in SAMPLES if isinstance(e, Table))
    back = loads("table", dumps(table))
    assert isinstance(back, Table)
    assert [[type(cell) for cell in row] for row in back.rows] == [
        [str, int, float, bool, type(None)],
        [str, int, float, bool, str],
    ]


@pytest.mark.parametrize("tz", [UTC, PLUS_TWO, timezone(-timedelta(hours=5, minutes=30))], ids=str)
def test_start_timestamp_is_an_rfc3339_string_and_keeps_its_instant_and_offset(
    tz: timezone,
) -> None:
    created = datetime(2024, 12, 31, 23, 59, 58, 5, tzinfo=tz)
    start = Start("run_1", "conv_1", "msg_1", "chat", "m", created)
    stamp = orjson.loads(dumps(start))["created_at"]
    assert isinstance(stamp, str)
    assert RFC3339.match(stamp), stamp
    back = loads("start", dumps(start))
    assert isinstance(back, Start)
    assert back.created_at == created
    assert back.created_at.utcoffset() == created.utcoffset()


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_dumps_never_contains_a_raw_line_break(event: Event) -> None:
    data = dumps(event)
    assert b"\n" not in data
    assert b"\r" not in data


@given(st.text())
def test_delta_text_with_line_breaks_still_dumps_to_one_line(text: str) -> None:
    data = dumps(Delta(text + "\n\r\n\r"))
    assert b"\n" not in data
    assert b"\r" not in data


def test_loads_of_an_unknown_type_raises_key_error() -> None:
    with pytest.raises(KeyError):
        loads("no-such-event", b'{"text": "x"}')


def test_loads_of_the_default_sse_message_type_raises_key_error() -> None:
    # An SSE message without an `event:` line is a "message"; it is not a canonical event.
    with pytest.raises(KeyError):
        loads("message", b'{"text": "x"}')


def _canonical(seq: int, event: Event) -> bytes:
    return CanonicalRenderer().render(seq, event)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_canonical_renderer_writes_what_sse_encode_would(event: Event) -> None:
    expected = encode(dumps(event).decode(), event=event.type, id="17")
    assert _canonical(17, event) == expected


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_canonical_bytes_decode_back_to_the_event(event: Event) -> None:
    [message] = decode([_canonical(3, event)])
    assert message.id == "3"
    assert message.event == event.type
    assert loads(message.event, message.data) == event


@settings(max_examples=300, database=None)
@given(text=st.text(), seq=st.integers(min_value=1, max_value=2**53))
def test_canonical_delta_bytes_equal_sse_encode_for_any_text(text: str, seq: int) -> None:
    event = Delta(text)
    expected = encode(dumps(event).decode(), event="delta", id=str(seq))
    assert _canonical(seq, event) == expected
    # What a replay renders from the log, where a delta is kept as its text.
    assert CanonicalRenderer().render_text(seq, text) == expected


@settings(max_examples=200, database=None)
@given(
    items=st.lists(st.one_of(st.text(), st.sampled_from(SAMPLES)), max_size=12),
    first=st.integers(min_value=1, max_value=2**53),
)
def test_a_replay_batch_is_the_bytes_of_each_item_rendered_in_turn_and_parses_back(
    items: list[Event | str], first: int
) -> None:
    # A replay renders the log's items in one go, a delta kept as its text; a live stream
    # renders each event as it comes. A client must not tell them apart.
    renderer = CanonicalRenderer()
    each = [
        renderer.render(seq, Delta(item) if isinstance(item, str) else item)
        for seq, item in enumerate(items, first)
    ]
    assert renderer.render_items(first, items) == b"".join(each)
    # The in-memory log keeps these messages (`Frames`): a canonical replay sends them as they
    # are, a replay in any other dialect parses them back and must get what was logged.
    assert [encode_item(seq, item) for seq, item in enumerate(items, first)] == each
    frames = Frames(b"".join(each), len(items))
    assert list(frames) == [item.text if type(item) is Delta else item for item in items]
    assert renderer.render_items(first, frames) == b"".join(each)


@settings(max_examples=300, database=None)
@given(text=st.text(), seq=st.integers(min_value=1, max_value=2**53))
def test_canonical_delta_bytes_decode_back_to_the_same_delta(text: str, seq: int) -> None:
    [message] = decode([_canonical(seq, Delta(text))])
    assert message.id == str(seq)
    assert message.event == "delta"
    assert loads(message.event, message.data) == Delta(text)


@settings(max_examples=100, database=None)
@given(st.lists(st.text(), min_size=1, max_size=8))
def test_a_stream_of_canonical_messages_decodes_to_the_same_events_in_order(
    texts: list[str],
) -> None:
    events = [Delta(t) for t in texts]
    stream = b"".join(_canonical(seq, e) for seq, e in enumerate(events, start=1))
    messages = decode([stream])
    assert [m.id for m in messages] == [str(i) for i in range(1, len(events) + 1)]
    assert [loads(m.event or "", m.data) for m in messages] == events
