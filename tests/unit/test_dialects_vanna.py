"""Seed 000's dialect (ssechat.dialects.vanna): golden bytes and what the seed's clients need."""

from __future__ import annotations

import orjson

from ssechat.dialects import Wire, wire_of
from ssechat.dialects.vanna import VannaRenderer
from ssechat.sse import decode
from tests.unit.test_dialects_common import ANSWER, CANCELLED, FAILED, RICH, render


def test_an_answer_is_start_then_chunks_then_complete_with_the_whole_answer() -> None:
    assert render(VannaRenderer(), ANSWER) == (
        b"event: start\n"
        b'data: {"event":"start","timestamp":"2026-01-30T13:06:05.123456+00:00",'
        b'"conversation_id":"conv_1","run_id":"run_1"}\n\n'
        b"event: chunk\n"
        b'data: {"event":"chunk","text":"Hello"}\n\n'
        b"event: chunk\n"
        b'data: {"event":"chunk","text":" world"}\n\n'
        b"event: complete\n"
        b'data: {"event":"complete","answer":"Hello world","sql":null,"csv_url":null}\n\n'
    )


def test_sql_table_and_csv_are_events_of_their_own_and_complete_repeats_sql_and_csv() -> None:
    assert render(VannaRenderer(), RICH) == (
        b"event: start\n"
        b'data: {"event":"start","timestamp":"2026-01-30T13:06:05.123456+00:00",'
        b'"conversation_id":"conv_2","run_id":"run_2"}\n\n'
        b"event: chunk\n"
        b'data: {"event":"chunk","text":"Paris"}\n\n'
        b"event: sql\n"
        b'data: {"event":"sql","sql":"SELECT 1 AS a"}\n\n'
        b"event: table\n"
        b'data: {"event":"table","columns":["a"],"rows":[[1]],"row_count":1,"truncated":false}\n\n'
        b"event: csv\n"
        b'data: {"event":"csv","url":"/v1/files/f1.csv"}\n\n'
        b"event: chunk\n"
        b'data: {"event":"chunk","text":"."}\n\n'
        b"event: complete\n"
        b'data: {"event":"complete","answer":"Paris.","sql":"SELECT 1 AS a",'
        b'"csv_url":"/v1/files/f1.csv"}\n\n'
    )


def test_a_failure_mid_answer_ends_with_an_error_event() -> None:
    assert render(VannaRenderer(), FAILED) == (
        b"event: start\n"
        b'data: {"event":"start","timestamp":"2026-01-30T13:06:05.123456+00:00",'
        b'"conversation_id":"conv_1","run_id":"run_1"}\n\n'
        b"event: chunk\n"
        b'data: {"event":"chunk","text":"Hel"}\n\n'
        b"event: error\n"
        b'data: {"event":"error","error":"the model server went away","code":"model_error",'
        b'"retryable":true}\n\n'
    )


def test_a_cancelled_run_ends_with_an_error_event_with_code_cancelled() -> None:
    assert render(VannaRenderer(), CANCELLED) == (
        b"event: start\n"
        b'data: {"event":"start","timestamp":"2026-01-30T13:06:05.123456+00:00",'
        b'"conversation_id":"conv_1","run_id":"run_1"}\n\n'
        b"event: chunk\n"
        b'data: {"event":"chunk","text":"Hel"}\n\n'
        b"event: error\n"
        b'data: {"event":"error","error":"the run was cancelled","code":"cancelled",'
        b'"retryable":false}\n\n'
    )


def test_every_data_line_names_its_event_as_the_seeds_python_client_indexes_it() -> None:
    for message in decode([render(VannaRenderer(), [*RICH, *FAILED[1:]])]):
        assert orjson.loads(message.data)["event"] == message.event


def test_status_sources_followups_and_metadata_have_no_place_in_this_format() -> None:
    events = [m.event for m in decode([render(VannaRenderer(), RICH)])]
    assert events == ["start", "chunk", "sql", "table", "csv", "chunk", "complete"]


def test_the_stream_has_no_retry_preamble() -> None:
    assert wire_of(VannaRenderer()) == Wire(retry=False)
