"""What every dialect shares (ssechat.dialects): the registry, `frame`, `Wire`; and the canonical
event sequences the per-dialect golden tests (test_dialects_<name>.py) render."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssechat.dialects import (
    DEFAULT_WIRE,
    TEXT_MARK,
    Renderer,
    TextTemplate,
    Wire,
    dialect_names,
    frame,
    get_dialect,
    render_items,
    text_renderer,
    wire_of,
)
from ssechat.events import (
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
)
from ssechat.sse import decode

CREATED = datetime(2026, 1, 30, 13, 6, 5, 123456, tzinfo=UTC)
START = Start("run_1", "conv_1", "msg_1", "chat", "m", CREATED)

# A plain chat answer.
ANSWER: Sequence[Event] = (
    START,
    Status("generating"),
    Delta("Hello"),
    Delta(" world"),
    Metadata("m", Usage(5, 2), Timings(12.5, 40.0)),
    Complete("msg_1", "Hello world", "stop", usage=Usage(5, 2)),
)

# Everything a rag or sql pipeline can say.
RICH: Sequence[Event] = (
    Start("run_2", "conv_2", "msg_2", "rag", "m", CREATED),
    Status("retrieving"),
    Sources(
        (
            Source("doc-1#0", "Guide", "Paris is the capital.", 0.9, "https://example.com/g"),
            Source("doc-2#3", "notes.txt", "France", 0.5, metadata={"page": 3}),
        )
    ),
    Status("generating"),
    Delta("Paris"),
    Sql("SELECT 1 AS a", "sqlite"),
    Table(("a",), ((1,),), 1, False),
    Csv("/v1/files/f1.csv", 1, 4),
    Delta("."),
    Followups(("Why Paris?",)),
    Metadata("m", Usage(9, 2), Timings(3.0, 9.0), {"score": 0.75, "method": "overlap"}),
    Complete("msg_2", "Paris.", "length", sql="SELECT 1 AS a", csv_url="/v1/files/f1.csv"),
)

# The model failed mid-answer.
FAILED: Sequence[Event] = (
    START,
    Delta("Hel"),
    Error("model_error", "the model server went away", retryable=True),
)

# Stopped by `POST /v1/runs/{id}/cancel`.
CANCELLED: Sequence[Event] = (
    START,
    Delta("Hel"),
    Error("cancelled", "the run was cancelled"),
)


def render(renderer: Renderer, events: Sequence[Event], first_seq: int = 1) -> bytes:
    return b"".join(renderer.render(seq, e) for seq, e in enumerate(events, first_seq))


def test_every_dialect_of_the_design_table_is_registered() -> None:
    expected = ["ai-sdk", "delta", "keyed", "message", "openai", "ssechat", "typed", "vanna"]
    assert dialect_names() == expected


@pytest.mark.parametrize(
    "name", ["ai-sdk", "delta", "keyed", "message", "openai", "typed", "vanna"]
)
def test_every_dialect_renders_well_formed_sse_for_any_route(name: str) -> None:
    # Made with no arguments, as `?format=` makes it, and fed every kind of event.
    body = render(get_dialect(name)(), [*RICH, *FAILED[1:]])
    assert body.endswith(b"\n\n")
    assert all(m.data for m in decode([body]))


def test_frame_is_one_compact_json_data_line_with_optional_id_and_event() -> None:
    assert frame({"a": "b\nc"}) == b'data: {"a":"b\\nc"}\n\n'
    assert frame([1], event="x", id="7") == b"id: 7\nevent: x\ndata: [1]\n\n"


def test_frame_gives_what_the_sse_decoder_reads_back() -> None:
    (message,) = decode([frame({"text": "é ✓"}, event="chunk", id="run_1:4")])
    assert (message.event, message.id, orjson.loads(message.data)) == (
        "chunk",
        "run_1:4",
        {"text": "é ✓"},
    )


def test_a_renderer_without_a_wire_gets_the_default_one() -> None:
    class Plain:
        def render(self, seq: int, event: Event) -> bytes:
            return b""

    assert wire_of(Plain()) == DEFAULT_WIRE == Wire(retry=True, headers=())
    assert wire_of(get_dialect("ssechat")()) == DEFAULT_WIRE
    assert wire_of(get_dialect("openai")()) == Wire(retry=False)


@pytest.mark.parametrize("name", dialect_names())
def test_every_dialect_renders_a_replay_batch_as_a_live_stream_renders_each_event(
    name: str,
) -> None:
    options = {"now": lambda: CREATED} if name == "message" else {}
    live, replay = get_dialect(name)(**options), get_dialect(name)(**options)
    logged = [e.text if isinstance(e, Delta) else e for e in RICH]  # as a log keeps them
    expected = b"".join(live.render(seq, event) for seq, event in enumerate(RICH, 5))
    assert render_items(replay, 5, logged) == expected


@pytest.mark.parametrize("name", dialect_names())
def test_every_dialect_renders_a_delta_given_as_text_as_it_renders_the_delta(name: str) -> None:
    # A replay reads deltas from the log as their text: a dialect with its own `render_text`
    # and one served by `render` must both give the bytes of a live stream.
    options = {"now": lambda: CREATED} if name == "message" else {}  # it stamps each event
    live, replay = get_dialect(name)(**options), get_dialect(name)(**options)
    for seq, event in enumerate(RICH, 1):
        if isinstance(event, Delta):
            assert text_renderer(replay)(seq, event.text) == live.render(seq, event)
        else:
            assert replay.render(seq, event) == live.render(seq, event)


@settings(max_examples=200, database=None)
@given(text=st.text())
def test_a_text_template_takes_any_text_as_orjson_would(text: str) -> None:
    template = TextTemplate(frame({"id": "x", "delta": TEXT_MARK, "n": 1}, event="e"))
    assert template.fill(text) == frame({"id": "x", "delta": text, "n": 1}, event="e")


def test_a_message_without_the_text_mark_is_no_template() -> None:
    with pytest.raises(ValueError, match="TEXT_MARK"):
        TextTemplate(frame({"delta": "text"}))


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@settings(max_examples=100, database=None)
@given(text=st.text(min_size=1))
@pytest.mark.parametrize("name", dialect_names())
def test_every_dialect_carries_any_delta_text_intact(name: str, text: str) -> None:
    # Quotes, backslashes, line breaks, control characters, any script: a client decoding
    # the stream gets the token back as it was.
    renderer = get_dialect(name)()
    renderer.render(1, START)
    messages = decode([text_renderer(renderer)(2, text)])
    assert messages
    assert text in [s for m in messages for s in _strings(orjson.loads(m.data))]
