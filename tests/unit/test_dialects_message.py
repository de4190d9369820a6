"""Seed 002's dialect (ssechat.dialects.message): golden bytes for its EventSource stream and its
POST variant, and the JSON answer of the POST variant."""

from __future__ import annotations

from datetime import UTC, datetime

from ssechat.dialects import DEFAULT_WIRE, Wire, wire_of
from ssechat.dialects.message import MessageRenderer, message_body
from tests.unit.test_dialects_common import ANSWER, CANCELLED, FAILED, RICH, render

NOW = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def test_an_answer_is_connected_then_message_updates_then_done() -> None:
    assert render(MessageRenderer(now=clock), ANSWER) == (
        b"id: 1\n"
        b"event: connected\n"
        b'data: {"status":"connected","run_id":"run_1","conversation_id":"conv_1"}\n\n'
        b"id: 2\n"
        b"event: message\n"
        b'data: {"type":"specialist_update","specialist":"chat","status":"generating",'
        b'"detail":null,"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 3\n"
        b"event: message\n"
        b'data: {"type":"text","content":"Hello","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 4\n"
        b"event: message\n"
        b'data: {"type":"text","content":" world","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 5\n"
        b"event: message\n"
        b'data: {"type":"metadata","model":"m","usage":{"prompt_tokens":5,'
        b'"completion_tokens":2},"timings":{"ttft_ms":12.5,"total_ms":40.0},"quality":null,'
        b'"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 6\n"
        b"event: done\n"
        b'data: {"status":"complete"}\n\n'
    )


def test_sql_is_a_run_sql_tool_call_and_other_events_keep_their_canonical_fields() -> None:
    assert render(MessageRenderer(now=clock), RICH) == (
        b"id: 1\n"
        b"event: connected\n"
        b'data: {"status":"connected","run_id":"run_2","conversation_id":"conv_2"}\n\n'
        b"id: 2\n"
        b"event: message\n"
        b'data: {"type":"specialist_update","specialist":"rag","status":"retrieving",'
        b'"detail":null,"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 3\n"
        b"event: message\n"
        b'data: {"type":"sources","sources":[{"id":"doc-1#0","title":"Guide",'
        b'"text":"Paris is the capital.","score":0.9,"uri":"https://example.com/g",'
        b'"metadata":{}},{"id":"doc-2#3","title":"notes.txt","text":"France","score":0.5,'
        b'"uri":null,"metadata":{"page":3}}],"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 4\n"
        b"event: message\n"
        b'data: {"type":"specialist_update","specialist":"rag","status":"generating",'
        b'"detail":null,"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 5\n"
        b"event: message\n"
        b'data: {"type":"text","content":"Paris","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 6\n"
        b"event: message\n"
        b'data: {"type":"tool_call","tool":"run_sql","arguments":{"sql":"SELECT 1 AS a",'
        b'"dialect":"sqlite"},"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 7\n"
        b"event: message\n"
        b'data: {"type":"table","columns":["a"],"rows":[[1]],"row_count":1,"truncated":false,'
        b'"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 8\n"
        b"event: message\n"
        b'data: {"type":"csv","url":"/v1/files/f1.csv","rows":1,"bytes":4,'
        b'"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 9\n"
        b"event: message\n"
        b'data: {"type":"text","content":".","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 10\n"
        b"event: message\n"
        b'data: {"type":"followups","questions":["Why Paris?"],'
        b'"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 11\n"
        b"event: message\n"
        b'data: {"type":"metadata","model":"m","usage":{"prompt_tokens":9,'
        b'"completion_tokens":2},"timings":{"ttft_ms":3.0,"total_ms":9.0},'
        b'"quality":{"score":0.75,"method":"overlap"},"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: 12\n"
        b"event: done\n"
        b'data: {"status":"complete"}\n\n'
    )


# The opening of a run stopped after its first piece of text (FAILED and CANCELLED).
CUT_SHORT = (
    b"id: 1\n"
    b"event: connected\n"
    b'data: {"status":"connected","run_id":"run_1","conversation_id":"conv_1"}\n\n'
    b"id: 2\n"
    b"event: message\n"
    b'data: {"type":"text","content":"Hel","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
)


def test_a_failure_mid_answer_ends_with_an_error_event() -> None:
    assert render(MessageRenderer(now=clock), FAILED) == CUT_SHORT + (
        b"id: 3\n"
        b"event: error\n"
        b'data: {"error":"the model server went away","code":"model_error"}\n\n'
    )


def test_a_cancelled_run_ends_with_an_error_event_with_code_cancelled() -> None:
    assert render(MessageRenderer(now=clock), CANCELLED) == CUT_SHORT + (
        b'id: 3\nevent: error\ndata: {"error":"the run was cancelled","code":"cancelled"}\n\n'
    )


def test_ids_carry_the_run_so_an_eventsource_reconnect_finds_it() -> None:
    assert render(MessageRenderer(id_prefix="run_1:", now=clock), ANSWER[:3]) == (
        b"id: run_1:1\n"
        b"event: connected\n"
        b'data: {"status":"connected","run_id":"run_1","conversation_id":"conv_1"}\n\n'
        b"id: run_1:2\n"
        b"event: message\n"
        b'data: {"type":"specialist_update","specialist":"chat","status":"generating",'
        b'"detail":null,"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"id: run_1:3\n"
        b"event: message\n"
        b'data: {"type":"text","content":"Hello","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
    )


def test_the_post_variant_sends_only_message_events_without_ids() -> None:
    assert render(MessageRenderer(id_prefix=None, lifecycle=False, now=clock), ANSWER) == (
        b"event: message\n"
        b'data: {"type":"specialist_update","specialist":"chat","status":"generating",'
        b'"detail":null,"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"event: message\n"
        b'data: {"type":"text","content":"Hello","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"event: message\n"
        b'data: {"type":"text","content":" world","timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
        b"event: message\n"
        b'data: {"type":"metadata","model":"m","usage":{"prompt_tokens":5,'
        b'"completion_tokens":2},"timings":{"ttft_ms":12.5,"total_ms":40.0},"quality":null,'
        b'"timestamp":"2026-02-01T09:00:00+00:00"}\n\n'
    )


def test_a_stream_that_joins_late_names_the_pipeline_it_never_saw_start_for_ssechat() -> None:
    body = render(MessageRenderer(now=clock), ANSWER[1:2], first_seq=2)
    assert b'"specialist":"ssechat"' in body


def test_the_json_answer_has_the_whole_text_and_the_updates_the_stream_carried() -> None:
    assert message_body(ANSWER, now=clock) == {
        "run_id": "run_1",
        "conversation_id": "conv_1",
        "message_id": "msg_1",
        "content": "Hello world",
        "updates": [
            {
                "type": "specialist_update",
                "specialist": "chat",
                "status": "generating",
                "detail": None,
                "timestamp": "2026-02-01T09:00:00+00:00",
            },
            {"type": "text", "content": "Hello", "timestamp": "2026-02-01T09:00:00+00:00"},
            {"type": "text", "content": " world", "timestamp": "2026-02-01T09:00:00+00:00"},
            {
                "type": "metadata",
                "model": "m",
                "usage": {"prompt_tokens": 5, "completion_tokens": 2},
                "timings": {"ttft_ms": 12.5, "total_ms": 40.0},
                "quality": None,
                "timestamp": "2026-02-01T09:00:00+00:00",
            },
        ],
    }


def test_the_eventsource_stream_sends_retry_and_the_post_variant_does_not() -> None:
    assert wire_of(MessageRenderer()) == DEFAULT_WIRE
    assert wire_of(MessageRenderer(lifecycle=False)) == Wire(retry=False)
