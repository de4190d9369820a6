"""The openai backend (ssechat.models.openai) against recorded OpenAI wire exchanges: tools
offered in the request, the streamed call fragments joined into one `ToolCall`, and text
whose surrogate pairs a server split across chunks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import orjson

from ssechat.models import GenerationParams, Message, ModelDelta, Tool, ToolCall
from ssechat.models.openai import OpenAIBackend

TOOL = Tool(
    name="run_sql",
    description="Run SQL",
    parameters={"type": "object", "properties": {"sql": {"type": "string"}}},
)


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


STREAM = b"".join(
    [
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type":
              "function", "function": {"name": "run_sql", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"sql": "SEL'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ECT 1"}'}}]}),
        chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]
)  # fmt: skip


def run(
    params: GenerationParams, stream: bytes = STREAM
) -> tuple[list[ModelDelta], dict[str, Any]]:
    sent: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        sent.update(orjson.loads(request.content))
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    async def go() -> list[ModelDelta]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client = openai.AsyncOpenAI(base_url="http://model.test/v1", api_key="k", http_client=http)
        backend = OpenAIBackend(client, "m", max_tokens=16)
        try:
            return [d async for d in backend.stream([Message("user", "hi")], params)]
        finally:
            await backend.aclose()

    return asyncio.run(go()), sent


def test_offered_tools_are_sent_as_openai_functions() -> None:
    _, sent = run(GenerationParams(tools=(TOOL,)))
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "run_sql",
                "description": "Run SQL",
                "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}},
            },
        }
    ]


def test_no_tools_means_no_tools_field() -> None:
    _, sent = run(GenerationParams())
    assert "tools" not in sent


def test_streamed_call_fragments_arrive_as_one_tool_call_with_the_finish_reason() -> None:
    deltas, _ = run(GenerationParams(tools=(TOOL,)))
    calls = [d for d in deltas if d.tool_calls]
    assert len(calls) == 1
    assert calls[0].tool_calls == (ToolCall("call_1", "run_sql", '{"sql": "SELECT 1"}'),)
    assert calls[0].finish_reason == "tool_calls"


def text_chunks(*contents: str, finish: bool = True) -> bytes:
    """A stream of text chunks, each `content` given as the JSON string's inside, escapes and
    all (orjson would refuse to write a lone surrogate); then, if `finish`, a finishing one."""
    head = b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"m",'
    chunks = [
        head
        + b'"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n' % c.encode()
        for c in contents
    ]
    if finish:
        chunks.append(head + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
    return b"".join([*chunks, b"data: [DONE]\n\n"])


def test_a_surrogate_pair_split_across_chunks_arrives_as_its_character() -> None:
    deltas, _ = run(GenerationParams(), text_chunks("Hi \\ud83d", "\\ude00 there", "!"))
    texts = [d.text for d in deltas if d.text]
    assert "".join(texts) == "Hi \U0001f600 there!"
    for text in texts:
        text.encode()  # every token can be logged, sent and stored as UTF-8


def test_a_surrogate_with_no_partner_becomes_a_replacement_character() -> None:
    deltas, _ = run(GenerationParams(), text_chunks("a\\udc00b", "c\\ud83d", finish=False))
    assert "".join(d.text for d in deltas) == "a\ufffdbc\ufffd"
    deltas, _ = run(GenerationParams(), text_chunks("c\\ud83d"))
    assert "".join(d.text for d in deltas) == "c\ufffd"
