"""Seed 004's dialect (ssechat.dialects.delta): golden bytes."""

from __future__ import annotations

import orjson

from ssechat.dialects import Wire, wire_of
from ssechat.dialects.delta import DeltaRenderer
from ssechat.sse import decode
from tests.unit.test_dialects_common import ANSWER, CANCELLED, FAILED, RICH, render


def test_an_answer_is_the_route_s_snapshot_then_deltas_then_an_empty_done_delta() -> None:
    assert render(DeltaRenderer(snapshot={"id": "conv_1", "messages": []}), ANSWER) == (
        b"event: snapshot\n"
        b'data: {"id":"conv_1","messages":[]}\n\n'
        b'data: {"delta":"","done":false,"status":{"stage":"generating","detail":null}}\n\n'
        b'data: {"delta":"Hello","done":false}\n\n'
        b'data: {"delta":" world","done":false}\n\n'
        b'data: {"delta":"","done":false,"metadata":{"model":"m","usage":{"prompt_tokens":5,'
        b'"completion_tokens":2},"timings":{"ttft_ms":12.5,"total_ms":40.0},"quality":null}}\n\n'
        b'data: {"delta":"","done":true}\n\n'
    )


def test_events_without_text_ride_along_next_to_an_empty_delta() -> None:
    assert render(DeltaRenderer(), RICH) == (
        b"event: snapshot\n"
        b'data: {"conversation_id":"conv_2","run_id":"run_2","message_id":"msg_2","model":"m",'
        b'"created_at":"2026-01-30T13:06:05.123456+00:00"}\n\n'
        b'data: {"delta":"","done":false,"status":{"stage":"retrieving","detail":null}}\n\n'
        b'data: {"delta":"","done":false,"sources":{"sources":[{"id":"doc-1#0","title":"Guide",'
        b'"text":"Paris is the capital.","score":0.9,"uri":"https://example.com/g",'
        b'"metadata":{}},{"id":"doc-2#3","title":"notes.txt","text":"France","score":0.5,'
        b'"uri":null,"metadata":{"page":3}}]}}\n\n'
        b'data: {"delta":"","done":false,"status":{"stage":"generating","detail":null}}\n\n'
        b'data: {"delta":"Paris","done":false}\n\n'
        b'data: {"delta":"","done":false,"sql":{"sql":"SELECT 1 AS a","dialect":"sqlite"}}\n\n'
        b'data: {"delta":"","done":false,"table":{"columns":["a"],"rows":[[1]],"row_count":1,'
        b'"truncated":false}}\n\n'
        b'data: {"delta":"","done":false,"csv":{"url":"/v1/files/f1.csv","rows":1,"bytes":4}}\n\n'
        b'data: {"delta":".","done":false}\n\n'
        b'data: {"delta":"","done":false,"followups":{"questions":["Why Paris?"]}}\n\n'
        b'data: {"delta":"","done":false,"metadata":{"model":"m","usage":{"prompt_tokens":9,'
        b'"completion_tokens":2},"timings":{"ttft_ms":3.0,"total_ms":9.0},'
        b'"quality":{"score":0.75,"method":"overlap"}}}\n\n'
        b'data: {"delta":"","done":true}\n\n'
    )


def test_a_failure_mid_answer_is_a_final_done_delta_carrying_the_error() -> None:
    assert render(DeltaRenderer(), FAILED) == (
        b"event: snapshot\n"
        b'data: {"conversation_id":"conv_1","run_id":"run_1","message_id":"msg_1","model":"m",'
        b'"created_at":"2026-01-30T13:06:05.123456+00:00"}\n\n'
        b'data: {"delta":"Hel","done":false}\n\n'
        b'data: {"delta":"","done":true,"error":{"code":"model_error",'
        b'"message":"the model server went away"}}\n\n'
    )


def test_a_cancelled_run_is_a_final_done_delta_carrying_code_cancelled() -> None:
    assert render(DeltaRenderer(), CANCELLED) == (
        b"event: snapshot\n"
        b'data: {"conversation_id":"conv_1","run_id":"run_1","message_id":"msg_1","model":"m",'
        b'"created_at":"2026-01-30T13:06:05.123456+00:00"}\n\n'
        b'data: {"delta":"Hel","done":false}\n\n'
        b'data: {"delta":"","done":true,"error":{"code":"cancelled",'
        b'"message":"the run was cancelled"}}\n\n'
    )


def test_every_message_after_the_snapshot_has_delta_and_done() -> None:
    # A client that appends `delta` until `done` must never append anything but text.
    messages = decode([render(DeltaRenderer(), [*RICH[:-1], *FAILED[1:]])])
    assert messages[0].event == "snapshot"
    for message in messages[1:]:
        data = orjson.loads(message.data)
        assert (message.event, type(data["delta"]), type(data["done"])) == ("message", str, bool)
    assert [orjson.loads(m.data)["done"] for m in messages[1:]].count(True) == 1


def test_the_stream_has_no_retry_preamble() -> None:
    assert wire_of(DeltaRenderer()) == Wire(retry=False)
