"""OpenAI's dialect (ssechat.dialects.openai): golden chunk bytes and the `stream: false` body."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ssechat.dialects import Wire, frame, wire_of
from ssechat.dialects.openai import OpenAIRenderer, completion_body, finish_reason
from ssechat.events import Delta, Metadata
from tests.unit.test_dialects_common import ANSWER, CANCELLED, FAILED, RICH, START, render


def test_an_answer_is_a_role_chunk_content_chunks_a_finish_chunk_and_done() -> None:
    assert render(OpenAIRenderer(), ANSWER) == (
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,'
        b'"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )


def test_include_usage_adds_null_usage_to_every_chunk_and_a_final_usage_chunk() -> None:
    assert render(OpenAIRenderer(include_usage=True), ANSWER) == (
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,'
        b'"finish_reason":null}],"usage":null}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,'
        b'"finish_reason":null}],"usage":null}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,'
        b'"finish_reason":"stop"}],"usage":null}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,'
        b'"total_tokens":7}}\n\n'
        b"data: [DONE]\n\n"
    )


def test_events_openai_has_no_place_for_are_dropped_and_the_finish_reason_kept() -> None:
    assert render(OpenAIRenderer(), RICH) == (
        b'data: {"id":"chatcmpl-run_2","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_2","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":"Paris"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_2","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":"."},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_2","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,'
        b'"finish_reason":"length"}]}\n\n'
        b"data: [DONE]\n\n"
    )


def test_a_failure_mid_answer_is_openai_s_in_stream_error_object_then_done() -> None:
    assert render(OpenAIRenderer(), FAILED) == (
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        b'data: {"error":{"message":"the model server went away","type":"server_error",'
        b'"param":null,"code":"model_error"}}\n\n'
        b"data: [DONE]\n\n"
    )


def test_a_cancelled_run_is_an_error_object_with_code_cancelled_then_done() -> None:
    assert render(OpenAIRenderer(), CANCELLED) == (
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
        b'data: {"id":"chatcmpl-run_1","object":"chat.completion.chunk","created":1769778365,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        b'data: {"error":{"message":"the run was cancelled","type":"server_error","param":null,'
        b'"code":"cancelled"}}\n\n'
        b"data: [DONE]\n\n"
    )


def test_a_renderer_that_never_saw_start_still_writes_valid_chunks() -> None:
    assert OpenAIRenderer().render(7, Delta("x")) == (
        b'data: {"id":"chatcmpl-resumed","object":"chat.completion.chunk","created":0,'
        b'"model":"","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
    )


def test_a_finish_reason_openai_does_not_know_becomes_stop() -> None:
    assert [finish_reason(r) for r in (None, "stop", "length", "tool_calls", "eos")] == [
        "stop",
        "stop",
        "length",
        "tool_calls",
        "stop",
    ]


def test_the_non_streaming_body_is_one_chat_completion_with_usage() -> None:
    assert completion_body(ANSWER) == {
        "id": "chatcmpl-run_1",
        "object": "chat.completion",
        "created": 1769778365,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def test_the_non_streaming_body_takes_usage_from_metadata_when_complete_has_none() -> None:
    body = completion_body(RICH)
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    assert body["choices"][0]["finish_reason"] == "length"


def test_the_stream_never_has_a_retry_preamble() -> None:
    # openai-python dispatches a block holding only `retry:` and fails to parse its empty data.
    assert wire_of(OpenAIRenderer()) == Wire(retry=False)


@settings(max_examples=300, database=None)
@given(text=st.text(min_size=1), include_usage=st.booleans(), started=st.booleans())
def test_a_content_chunk_is_the_chunk_as_orjson_writes_it_for_any_text(
    text: str, include_usage: bool, started: bool
) -> None:
    # A delta's chunk is built around its text once (the hot path), not encoded per token:
    # it must still be the bytes of the whole chunk encoded, whatever the text holds.
    renderer = OpenAIRenderer(include_usage=include_usage)
    head = {"id": "chatcmpl-resumed", "object": "chat.completion.chunk", "created": 0, "model": ""}
    if started:
        renderer.render(1, START)
        head = {**head, "id": "chatcmpl-run_1", "created": 1769778365, "model": "m"}
    else:  # joined mid-answer: the model's name comes with the metadata, later chunks have it
        renderer.render(1, Metadata("m2", None, None))
        head["model"] = "m2"
    choice = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
    chunk = {**head, "choices": [choice], **({"usage": None} if include_usage else {})}
    assert renderer.render(2, Delta(text)) == frame(chunk)
    assert renderer.render_text(3, text) == frame(chunk)
