"""The AI SDK's UI message stream v1 (ssechat.dialects.ai_sdk): golden bytes, and the chunk
fields every v1 reader accepts."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ssechat.dialects import Wire, frame, wire_of
from ssechat.dialects.ai_sdk import AiSdkRenderer
from ssechat.events import Delta, Sources
from ssechat.sse import decode
from tests.unit.test_dialects_common import ANSWER, CANCELLED, FAILED, RICH, render

# The keys `ai` 5.0.0 allowed per chunk type: its schemas were strict objects (later
# versions accept more, never less).
STRICT_KEYS = {
    "start": {"type", "messageId", "messageMetadata"},
    "start-step": {"type"},
    "text-start": {"type", "id", "providerMetadata"},
    "text-delta": {"type", "id", "delta", "providerMetadata"},
    "text-end": {"type", "id", "providerMetadata"},
    "source-url": {"type", "sourceId", "url", "title", "providerMetadata"},
    "source-document": {"type", "sourceId", "mediaType", "title", "filename", "providerMetadata"},
    "message-metadata": {"type", "messageMetadata"},
    "finish-step": {"type"},
    "finish": {"type", "messageMetadata"},
    "error": {"type", "errorText"},
    "abort": {"type"},
}


def test_an_answer_is_start_a_text_part_and_finish_then_done() -> None:
    assert render(AiSdkRenderer(), ANSWER) == (
        b'data: {"type":"start","messageId":"msg_1",'
        b'"messageMetadata":{"conversation_id":"conv_1","run_id":"run_1","model":"m",'
        b'"pipeline":"chat"}}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"data-status","data":{"stage":"generating","detail":null},'
        b'"transient":true}\n\n'
        b'data: {"type":"text-start","id":"text-3"}\n\n'
        b'data: {"type":"text-delta","id":"text-3","delta":"Hello"}\n\n'
        b'data: {"type":"text-delta","id":"text-3","delta":" world"}\n\n'
        b'data: {"type":"message-metadata","messageMetadata":{"model":"m",'
        b'"usage":{"prompt_tokens":5,"completion_tokens":2},"timings":{"ttft_ms":12.5,'
        b'"total_ms":40.0},"quality":null}}\n\n'
        b'data: {"type":"text-end","id":"text-3"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","messageMetadata":{"finish_reason":"stop"}}\n\n'
        b"data: [DONE]\n\n"
    )


def test_sources_become_source_parts_and_sql_results_data_parts_between_text_parts() -> None:
    assert render(AiSdkRenderer(), RICH) == (
        b'data: {"type":"start","messageId":"msg_2",'
        b'"messageMetadata":{"conversation_id":"conv_2","run_id":"run_2","model":"m",'
        b'"pipeline":"rag"}}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"data-status","data":{"stage":"retrieving","detail":null},'
        b'"transient":true}\n\n'
        b'data: {"type":"source-url","sourceId":"doc-1#0","url":"https://example.com/g",'
        b'"title":"Guide"}\n\n'
        b'data: {"type":"source-document","sourceId":"doc-2#3","mediaType":"text/plain",'
        b'"title":"notes.txt"}\n\n'
        b'data: {"type":"data-status","data":{"stage":"generating","detail":null},'
        b'"transient":true}\n\n'
        b'data: {"type":"text-start","id":"text-5"}\n\n'
        b'data: {"type":"text-delta","id":"text-5","delta":"Paris"}\n\n'
        b'data: {"type":"text-end","id":"text-5"}\n\n'
        b'data: {"type":"data-sql","data":{"sql":"SELECT 1 AS a","dialect":"sqlite"}}\n\n'
        b'data: {"type":"data-table","data":{"columns":["a"],"rows":[[1]],"row_count":1,'
        b'"truncated":false}}\n\n'
        b'data: {"type":"data-csv","data":{"url":"/v1/files/f1.csv","rows":1,"bytes":4}}\n\n'
        b'data: {"type":"text-start","id":"text-9"}\n\n'
        b'data: {"type":"text-delta","id":"text-9","delta":"."}\n\n'
        b'data: {"type":"text-end","id":"text-9"}\n\n'
        b'data: {"type":"data-followups","data":{"questions":["Why Paris?"]}}\n\n'
        b'data: {"type":"message-metadata","messageMetadata":{"model":"m",'
        b'"usage":{"prompt_tokens":9,"completion_tokens":2},"timings":{"ttft_ms":3.0,'
        b'"total_ms":9.0},"quality":{"score":0.75,"method":"overlap"}}}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","messageMetadata":{"finish_reason":"length"}}\n\n'
        b"data: [DONE]\n\n"
    )


def test_a_failure_mid_answer_closes_the_text_part_and_sends_an_error_part() -> None:
    assert render(AiSdkRenderer(), FAILED) == (
        b'data: {"type":"start","messageId":"msg_1",'
        b'"messageMetadata":{"conversation_id":"conv_1","run_id":"run_1","model":"m",'
        b'"pipeline":"chat"}}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"text-2"}\n\n'
        b'data: {"type":"text-delta","id":"text-2","delta":"Hel"}\n\n'
        b'data: {"type":"text-end","id":"text-2"}\n\n'
        b'data: {"type":"error","errorText":"the model server went away"}\n\n'
        b"data: [DONE]\n\n"
    )


def test_a_cancelled_run_closes_the_text_part_and_sends_abort() -> None:
    assert render(AiSdkRenderer(), CANCELLED) == (
        b'data: {"type":"start","messageId":"msg_1",'
        b'"messageMetadata":{"conversation_id":"conv_1","run_id":"run_1","model":"m",'
        b'"pipeline":"chat"}}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"text-2"}\n\n'
        b'data: {"type":"text-delta","id":"text-2","delta":"Hel"}\n\n'
        b'data: {"type":"text-end","id":"text-2"}\n\n'
        b'data: {"type":"abort"}\n\n'
        b"data: [DONE]\n\n"
    )


def test_every_chunk_has_only_fields_the_strictest_v1_reader_accepts() -> None:
    events = [*RICH[:-1], *FAILED[1:], *CANCELLED[1:]]
    for message in decode([render(AiSdkRenderer(), events)]):
        if message.data == "[DONE]":
            continue
        chunk = orjson.loads(message.data)
        if chunk["type"].startswith("data-"):
            assert set(chunk) <= {"type", "id", "data", "transient"}
        else:
            assert set(chunk) <= STRICT_KEYS[chunk["type"]], chunk


def test_a_stream_joined_mid_answer_opens_its_text_part_first() -> None:
    assert AiSdkRenderer().render(4, Delta("lo")) == (
        b'data: {"type":"text-start","id":"text-4"}\n\n'
        b'data: {"type":"text-delta","id":"text-4","delta":"lo"}\n\n'
    )


def test_the_response_carries_the_protocol_header_and_no_retry_preamble() -> None:
    wire = wire_of(AiSdkRenderer())
    assert wire == Wire(retry=False, headers=(("x-vercel-ai-ui-message-stream", "v1"),))


@settings(max_examples=200, database=None)
@given(texts=st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_text_deltas_are_the_chunks_as_orjson_writes_them_for_any_text(texts: list[str]) -> None:
    # Each text part's delta chunk is built around its text once (the hot path): it must
    # still be the bytes of the chunk encoded, whatever the text, in every part.
    renderer = AiSdkRenderer()
    got, expected = b"", b""
    for seq in (2, 20):
        got += b"".join(renderer.render(seq + i, Delta(t)) for i, t in enumerate(texts))
        expected += frame({"type": "text-start", "id": f"text-{seq}"}) + b"".join(
            frame({"type": "text-delta", "id": f"text-{seq}", "delta": t}) for t in texts
        )
        got += renderer.render(19, Sources(()))  # ends the part: the next delta opens one
        expected += frame({"type": "text-end", "id": f"text-{seq}"})
    assert got == expected
