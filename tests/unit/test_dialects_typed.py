"""Seed 003's dialect (ssechat.dialects.typed): golden bytes."""

from __future__ import annotations

from ssechat.dialects import Wire, wire_of
from ssechat.dialects.typed import TypedRenderer
from ssechat.events import Status
from tests.unit.test_dialects_common import ANSWER, CANCELLED, FAILED, RICH, START, render


def test_an_answer_is_start_status_chunks_metadata_with_the_whole_answer_then_done() -> None:
    assert render(TypedRenderer(session_id=1), ANSWER) == (
        b'data: {"type":"start","session_id":1,"model":"m"}\n\n'
        b'data: {"type":"status","content":"Generating response..."}\n\n'
        b'data: {"type":"chunk","content":"Hello"}\n\n'
        b'data: {"type":"chunk","content":" world"}\n\n'
        b'data: {"type":"metadata","content":{"model":"m","confidence":null,'
        b'"hallucination":null,"usage":{"prompt_tokens":5,"completion_tokens":2},'
        b'"timings":{"ttft_ms":12.5,"total_ms":40.0},"quality":null,'
        b'"total_response":"Hello world"}}\n\n'
        b'data: {"type":"done"}\n\n'
    )


def test_sources_carry_chunks_used_and_sql_results_and_followups_get_types_of_their_own() -> None:
    assert render(TypedRenderer(session_id="s-9"), RICH) == (
        b'data: {"type":"start","session_id":"s-9","model":"m"}\n\n'
        b'data: {"type":"status","content":"Searching documents..."}\n\n'
        b'data: {"type":"sources","content":[{"text":"Paris is the capital.","score":0.9,'
        b'"metadata":{},"id":"doc-1#0","title":"Guide","uri":"https://example.com/g"},'
        b'{"text":"France","score":0.5,"metadata":{"page":3},"id":"doc-2#3",'
        b'"title":"notes.txt","uri":null}],"chunks_used":2}\n\n'
        b'data: {"type":"status","content":"Generating response..."}\n\n'
        b'data: {"type":"chunk","content":"Paris"}\n\n'
        b'data: {"type":"sql","content":{"sql":"SELECT 1 AS a","dialect":"sqlite"}}\n\n'
        b'data: {"type":"table","content":{"columns":["a"],"rows":[[1]],"row_count":1,'
        b'"truncated":false}}\n\n'
        b'data: {"type":"csv","content":{"url":"/v1/files/f1.csv","rows":1,"bytes":4}}\n\n'
        b'data: {"type":"chunk","content":"."}\n\n'
        b'data: {"type":"followups","content":{"questions":["Why Paris?"]}}\n\n'
        b'data: {"type":"metadata","content":{"model":"m","confidence":0.75,'
        b'"hallucination":null,"usage":{"prompt_tokens":9,"completion_tokens":2},'
        b'"timings":{"ttft_ms":3.0,"total_ms":9.0},"quality":{"score":0.75,"method":"overlap"},'
        b'"total_response":"Paris."}}\n\n'
        b'data: {"type":"done"}\n\n'
    )


def test_a_failure_mid_answer_ends_with_an_error_message() -> None:
    assert render(TypedRenderer(session_id=1), FAILED) == (
        b'data: {"type":"start","session_id":1,"model":"m"}\n\n'
        b'data: {"type":"chunk","content":"Hel"}\n\n'
        b'data: {"type":"error","content":"the model server went away","code":"model_error"}\n\n'
    )


def test_a_cancelled_run_ends_with_an_error_message_with_code_cancelled() -> None:
    assert render(TypedRenderer(session_id=1), CANCELLED) == (
        b'data: {"type":"start","session_id":1,"model":"m"}\n\n'
        b'data: {"type":"chunk","content":"Hel"}\n\n'
        b'data: {"type":"error","content":"the run was cancelled","code":"cancelled"}\n\n'
    )


def test_without_a_session_id_start_names_the_conversation() -> None:
    assert TypedRenderer().render(1, START) == (
        b'data: {"type":"start","session_id":"conv_1","model":"m"}\n\n'
    )


def test_a_stage_s_own_detail_wins_and_an_unknown_stage_is_shown_as_is() -> None:
    renderer = TypedRenderer()
    assert renderer.render(2, Status("retrieving", "Reading 3 files")) == (
        b'data: {"type":"status","content":"Reading 3 files"}\n\n'
    )
    assert (
        renderer.render(3, Status("ranking")) == b'data: {"type":"status","content":"ranking"}\n\n'
    )


def test_a_run_without_metadata_still_ends_with_done() -> None:
    assert render(TypedRenderer(session_id=1), [ANSWER[0], ANSWER[-1]]).endswith(
        b'data: {"type":"done"}\n\n'
    )


def test_the_stream_has_no_retry_preamble() -> None:
    assert wire_of(TypedRenderer()) == Wire(retry=False)
